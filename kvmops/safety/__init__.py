"""The safety gate, pure: what every changing step does (effects), the rules every plan
keeps (rules) and the domain XML policy (xmlpolicy)."""
