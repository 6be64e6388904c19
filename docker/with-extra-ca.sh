#!/bin/sh
# with-extra-ca.sh COMMAND [ARGUMENT...]
#
# Runs COMMAND in the build stage, trusting the build secret "ca-certificates" (a PEM bundle)
# in addition to Node's and Bun's built-in roots. A build behind a TLS-intercepting proxy passes
# the proxy's CA that way:
#
#   docker build --secret id=ca-certificates,src=/etc/ssl/certs/ca-certificates.crt .
#
# Without the secret, COMMAND runs unchanged. The bundle is read from the secret mount only, so
# it never lands in an image layer.
set -eu
bundle=/run/secrets/ca-certificates
if [ -s "$bundle" ]; then
  # Node (npm) and Bun both add the certificates in this file to their built-in roots.
  NODE_EXTRA_CA_CERTS=$bundle
  export NODE_EXTRA_CA_CERTS
fi
exec "$@"
