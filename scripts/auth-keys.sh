#!/usr/bin/env bash
# The token service's signing key and certificate (the registry trusts the certificate):
#   eval "$(scripts/auth-keys.sh)"     # exports AUTH_KEY_FILE and AUTH_CERT_FILE
# When AUTH_KEY_FILE and AUTH_CERT_FILE are set (an operator's keys), checks they exist and prints
# them back. Otherwise makes a development pair in var/secrets/ if there is no usable one (or its
# certificate has under 30 days left) and prints its paths. Idempotent: a usable pair is kept.
source "$(dirname "$0")/lib.sh"
if [ -n "${AUTH_KEY_FILE:-}" ] || [ -n "${AUTH_CERT_FILE:-}" ]; then
  [ -n "${AUTH_KEY_FILE:-}" ] && [ -n "${AUTH_CERT_FILE:-}" ] \
    || die "set both AUTH_KEY_FILE and AUTH_CERT_FILE, or neither (a development pair is made then)"
  [ -r "$AUTH_KEY_FILE" ] || die "AUTH_KEY_FILE=$AUTH_KEY_FILE is not a readable file"
  [ -r "$AUTH_CERT_FILE" ] || die "AUTH_CERT_FILE=$AUTH_CERT_FILE is not a readable file"
  key=$AUTH_KEY_FILE cert=$AUTH_CERT_FILE
else
  key="$VAR/secrets/auth-token.key" cert="$VAR/secrets/auth-token.crt"
  # (eventlet, imported on the way, prints its deprecation banner: cosmetic, and not ours to show)
  (cd "$ROOT" && PYTHONWARNINGS=ignore::Warning "$VENV/bin/python" -m auth.keys --key "$key" --cert "$cert") \
    || die "could not make the development token-signing key pair"
fi
printf 'export AUTH_KEY_FILE=%q\nexport AUTH_CERT_FILE=%q\n' "$key" "$cert"
