#!/usr/bin/env bash
# Writes a test cloud into DIR: a test CA and certificates (openssl), an nginx.conf serving
# DIR/www over HTTPS on 127.0.0.1:PORT with client certificates required, envelopes under
# /nodes/ as static files (nginx makes the ETag and answers If-None-Match with 304), and
# WebDAV PUT under /status/ for status reports and /logs/ for log uploads (log requests). A second server on ROGUE_PORT presents a
# certificate from another CA (for tests of a wrong server). Does not start nginx: see up.sh.
#
# Usage: hack/cloud/setup.sh DIR PORT [ROGUE_PORT]
# Files: ca.crt ca.key server.crt server.key client.crt client.key (the node's),
#        rogue-ca.crt rogue.crt rogue.key, nginx.conf, www/nodes/, www/status/, www/logs/, logs/.
set -euo pipefail
if (($# < 2)); then
  sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
  exit 2
fi
dir=$(realpath -m "$1")
port=$2
rogue_port=${3:-0}
mkdir -p "$dir"/{www/nodes,www/status,www/logs,logs,tmp}
cd "$dir"

# A CA, and a certificate signed by it: cert NAME CA SUBJECT EXTENSIONS.
ca() {
  [[ -f $1.crt ]] && return
  openssl req -x509 -newkey ed25519 -nodes -keyout "$1.key" -out "$1.crt" -days 3650 \
    -subj "/CN=$2" 2>/dev/null
}
cert() {
  [[ -f $1.crt ]] && return
  openssl req -newkey ed25519 -nodes -keyout "$1.key" -out "$1.csr" -subj "/CN=$3" 2>/dev/null
  printf '%s\n' "$4" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial -days 825 \
    -extfile "$1.ext" -out "$1.crt" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
ca ca "fleetlet test cloud CA"
ca rogue-ca "some other CA"
server_ext="subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth"
cert server ca "127.0.0.1" "$server_ext"
cert rogue rogue-ca "127.0.0.1" "$server_ext"
cert client ca "fleetlet node" "extendedKeyUsage=clientAuth"
chmod 600 ./*.key

rogue_server=""
if ((rogue_port > 0)); then
  rogue_server="
  server {
    listen 127.0.0.1:$rogue_port ssl;
    ssl_certificate $dir/rogue.crt;
    ssl_certificate_key $dir/rogue.key;
    root $dir/www;
  }"
fi

cat >nginx.conf <<CONF
# Written by hack/cloud/setup.sh: a test cloud for fleetletd (docs/cloud.md).
user root root;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/logs/error.log info;
events { worker_connections 512; }
http {
  types { application/json json; }
  default_type application/octet-stream;
  log_format cloud '\$request_method \$uri \$status \$body_bytes_sent "\$http_if_none_match" '
                   '"\$http_prefer" "\$ssl_client_s_dn" \$bytes_sent \$request_length';
  access_log $dir/logs/access.log cloud;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  keepalive_timeout 75s;
  keepalive_requests 10000;
  server {
    listen 127.0.0.1:$port ssl;
    ssl_certificate $dir/server.crt;
    ssl_certificate_key $dir/server.key;
    ssl_client_certificate $dir/ca.crt;
    ssl_verify_client on;
    root $dir/www;
    location /nodes/ {
      etag on;
    }
    location /status/ {
      dav_methods PUT;
      create_full_put_path on;
      dav_access user:rw group:r all:r;
      client_max_body_size 1m;
    }
    location /logs/ {
      dav_methods PUT;
      create_full_put_path on;
      dav_access user:rw group:r all:r;
      client_max_body_size 64m;
    }
  }$rogue_server
}
CONF
echo "$dir"
