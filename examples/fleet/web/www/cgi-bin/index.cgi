#!/bin/sh
# busybox httpd runs this for every directory request ("/", "/healthz/"): the
# version goes in a header and in the body so clients see a deploy switch.
printf 'Content-Type: text/plain\r\nX-App-Version: %s\r\n\r\n' "$APP_VERSION"
case "$REQUEST_URI" in
  /healthz*) printf 'ok %s\n' "$APP_VERSION" ;;
  *) printf 'fleet web %s on %s\n' "$APP_VERSION" "$(hostname)" ;;
esac
