#!/bin/sh
# The api: answers every request with its version.
mkdir -p /tmp/www && cp /app/VERSION /tmp/www/index.html
exec httpd -f -p "${PORT:-4000}" -h /tmp/www
