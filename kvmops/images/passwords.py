"""Password hashes for ``/etc/shadow``: SHA-512 crypt (``$6$``) in pure Python.

The ``crypt`` module is deprecated (gone in Python 3.13) and ``openssl passwd`` would need
the clear text on a command line or pipe; this is Ulrich Drepper's published SHA-crypt
algorithm, checked in the tests against ``openssl passwd -6`` and glibc's ``crypt``.
A :class:`Password` never shows its secret in ``repr``, logs or plans.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from functools import cached_property

from kvmops.errors import InvalidInput

ITOA64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
ROUNDS_DEFAULT = 5000
HASH_RE = re.compile(r"^\$6\$(rounds=(?P<rounds>\d+)\$)?(?P<salt>[./0-9A-Za-z]{1,16})\$[./0-9A-Za-z]{86}$")
_ORDER = (
    (0, 21, 42), (22, 43, 1), (44, 2, 23), (3, 24, 45), (25, 46, 4), (47, 5, 26), (6, 27, 48),
    (28, 49, 7), (50, 8, 29), (9, 30, 51), (31, 52, 10), (53, 11, 32), (12, 33, 54), (34, 55, 13),
    (56, 14, 35), (15, 36, 57), (37, 58, 16), (59, 17, 38), (18, 39, 60), (40, 61, 19), (62, 20, 41),
)


def sha512_crypt(password: str, salt: str | None = None, rounds: int | None = None) -> str:
    """``$6$SALT$HASH`` of ``password``; a random 16-character salt unless one is given."""
    salt = salt if salt is not None else "".join(secrets.choice(ITOA64) for _ in range(16))
    salt = salt[:16]
    if any(c not in ITOA64 for c in salt):
        raise InvalidInput("a crypt salt uses only the characters ./0-9A-Za-z")
    p, s = password.encode(), salt.encode()
    n = ROUNDS_DEFAULT if rounds is None else max(1000, min(rounds, 999_999_999))
    final = _digest(p, s, n)
    prefix = "$6$" + (f"rounds={n}$" if rounds is not None else "")
    return f"{prefix}{salt}${_encode(final)}"


def _digest(p: bytes, s: bytes, rounds: int) -> bytes:
    b = hashlib.sha512(p + s + p).digest()
    a = hashlib.sha512(p + s)
    a.update(_repeat(b, len(p)))
    i = len(p)
    while i > 0:
        a.update(b if i & 1 else p)
        i >>= 1
    a_sum = a.digest()
    p_seq = _repeat(hashlib.sha512(p * len(p)).digest(), len(p))
    s_seq = _repeat(hashlib.sha512(s * (16 + a_sum[0])).digest(), len(s))
    c = a_sum
    for r in range(rounds):
        h = hashlib.sha512(p_seq if r & 1 else c)
        if r % 3:
            h.update(s_seq)
        if r % 7:
            h.update(p_seq)
        h.update(c if r & 1 else p_seq)
        c = h.digest()
    return c


def _repeat(block: bytes, length: int) -> bytes:
    return (block * (length // len(block) + 1))[:length]


def _encode(d: bytes) -> str:
    out = []
    for b2, b1, b0 in _ORDER:
        out.append(_b64(d[b2], d[b1], d[b0], 4))
    out.append(_b64(0, 0, d[63], 2))
    return "".join(out)


def _b64(b2: int, b1: int, b0: int, n: int) -> str:
    w = (b2 << 16) | (b1 << 8) | b0
    chars = []
    for _ in range(n):
        chars.append(ITOA64[w & 0x3F])
        w >>= 6
    return "".join(chars)


def verify(password: str, hashed: str) -> bool:
    """True when ``password`` hashes to ``hashed`` (a ``$6$`` hash)."""
    m = HASH_RE.match(hashed)
    if not m:
        return False
    rounds = int(m["rounds"]) if m["rounds"] else None
    return hmac.compare_digest(sha512_crypt(password, m["salt"], rounds), hashed)


@dataclass(frozen=True)
class Password:
    """A user's new password: clear text (hashed here) or a ready ``$6$`` hash.

    ``Password.clear("centos", text)`` / ``Password.hashed("centos", "$6$...")``; the secret
    is never part of ``repr`` and the clear text never leaves this process.
    """

    user: str
    secret: str = field(repr=False)
    prehashed: bool = False

    def __post_init__(self) -> None:
        if not self.secret:
            raise InvalidInput(f"the password for {self.user} is empty: give a password or a $6$ hash")
        if self.prehashed and not HASH_RE.match(self.secret):
            raise InvalidInput(
                f"the hash given for {self.user} is not a SHA-512 crypt hash ($6$[rounds=N$]SALT$86 chars); "
                "make one with `openssl passwd -6` or `mkpasswd -m sha-512`"
            )
        if not self.prehashed and any(c in self.secret for c in "\n\r\0"):
            raise InvalidInput(f"the password for {self.user} contains a line break or NUL: not usable")

    @classmethod
    def clear(cls, user: str, text: str) -> Password:
        return cls(user, text, prehashed=False)

    @classmethod
    def hashed(cls, user: str, hashed: str) -> Password:
        return cls(user, hashed, prehashed=True)

    def hash(self) -> str:
        """The ``$6$`` hash to store (for clear text: made once, with a random salt)."""
        return self._hash

    @cached_property
    def _hash(self) -> str:
        return self.secret if self.prehashed else sha512_crypt(self.secret)

    def matches(self, stored: str) -> bool:
        """True when ``stored`` (from /etc/shadow) already is this password."""
        if self.prehashed:
            return hmac.compare_digest(stored, self.secret)
        return verify(self.secret, stored)
