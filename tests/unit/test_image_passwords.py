"""SHA-512 crypt against independent implementations; secrets never shown."""

from __future__ import annotations

import subprocess
import warnings

import pytest

from kvmops.errors import InvalidInput
from kvmops.images.passwords import Password, sha512_crypt, verify
from tests.support.secrets import PASSWORDS


@pytest.mark.parametrize("password", ["a", "s3cret pw", "ü" * 40, "x" * 200])
@pytest.mark.parametrize("salt", ["saltsalt", "abcdefgh12345678", "./AZaz09"])
def test_hash_equals_openssl(password: str, salt: str) -> None:
    want = subprocess.run(["openssl", "passwd", "-6", "-salt", salt, "-stdin"], input=password + "\n",
                          capture_output=True, text=True, check=True).stdout.strip()
    assert sha512_crypt(password, salt) == want


def test_custom_rounds_equal_glibc_crypt() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # deprecated, still the reference here
    for rounds in (1000, 1234, 9999):
        ref = crypt.crypt("pw", f"$6$rounds={rounds}$abc")
        assert sha512_crypt("pw", "abc", rounds) == ref
    assert sha512_crypt("", "emptypw") == crypt.crypt("", "$6$emptypw")


def test_random_salt_and_verify() -> None:
    a, b = sha512_crypt("pw"), sha512_crypt("pw")
    assert a != b
    assert verify("pw", a) and verify("pw", b)
    assert not verify("PW", a)
    assert not verify("pw", "$1$md5$hash")


def test_password_repr_and_hash_hide_the_secret() -> None:
    p = Password.clear("centos", PASSWORDS["hash-only"])
    secret = PASSWORDS["hash-only"]
    assert secret not in repr(p) and secret not in str(p)
    h = p.hash()
    assert h.startswith("$6$") and secret not in h
    assert p.matches(h)
    assert not Password.clear("centos", "other").matches(h)


def test_prehashed_is_kept_and_compared() -> None:
    h = sha512_crypt("pw", "abcdefgh")
    p = Password.hashed("root", h)
    assert p.hash() == h and p.matches(h) and not p.matches(sha512_crypt("pw", "zzzzzzzz"))


@pytest.mark.parametrize("bad", ["", "$6$short$abc", "$1$md5salt$0123456789abcdef", "plain text"])
def test_bad_hash_refused(bad: str) -> None:
    with pytest.raises(InvalidInput):
        Password.hashed("root", bad)


@pytest.mark.parametrize("bad", ["", "two\nlines", "nul\0"])
def test_bad_clear_text_refused_without_echo(bad: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        Password.clear("root", bad)
    assert bad.strip() == "" or bad not in str(exc.value)
