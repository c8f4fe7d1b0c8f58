#!/usr/bin/env bash
# Linli on this machine, behind HTTPS (Debian 12). Run as root from a checkout:
#   sudo deploy/single-host/install.sh [--cert FULLCHAIN.pem --key KEY.pem] [--name HOST]
# Again after `git pull` to upgrade: the code and venv are replaced, the
# settings, certificate and data are kept. What it makes:
#   /opt/linli/src, /opt/linli/venv    the code (read-only to the services) and its venv
#   /etc/linli/linli.env               the settings (root:linli 0640), made once
#   /etc/linli/tls/{cert,key}.pem      the given pair, else a self-signed one, made once
#   /var/lib/linli                     data, secrets, broker passwords (linli:linli 0700)
#   /etc/systemd/system/linli*         the units; /etc/nginx/sites-{available,enabled}/linli
#   /usr/local/sbin/linli              `linli` as the service user, for the operator
set -euo pipefail

SRC=$(cd "$(dirname "$0")/../.." && pwd)
PREFIX=/opt/linli
VAR=/var/lib/linli
ETC=/etc/linli
UNITS=/etc/systemd/system
cert="" key="" name=$(hostname -f 2>/dev/null || hostname)

while [ $# -gt 0 ]; do
  case "$1" in
    --cert) cert=$2; shift 2 ;;
    --key) key=$2; shift 2 ;;
    --name) name=$2; shift 2 ;;
    *) echo "install.sh: unknown argument $1 (--cert FILE --key FILE --name HOST)" >&2; exit 2 ;;
  esac
done
if [ "$(id -u)" != 0 ]; then echo "install.sh: run as root (sudo)" >&2; exit 1; fi
if { [ -n "$cert" ] && [ -z "$key" ]; } || { [ -z "$cert" ] && [ -n "$key" ]; }; then
  echo "install.sh: --cert and --key go together" >&2; exit 2
fi

echo "install.sh: packages (nginx, python3-venv, openssl) ..."
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx python3-venv openssl >/dev/null

echo "install.sh: user linli, $VAR, $ETC ..."
getent group linli >/dev/null || groupadd --system linli
getent passwd linli >/dev/null || useradd --system --gid linli --home-dir "$VAR" --no-create-home \
  --shell /usr/sbin/nologin --comment "Linli services" linli
install -d -m 0700 -o linli -g linli "$VAR"
install -d -m 0750 -o root -g linli "$ETC"
install -d -m 0700 -o root -g root "$ETC/tls"

if [ -d /run/systemd/system ] && systemctl is-active --quiet linli.target; then
  echo "install.sh: stopping linli.target to replace its code ..."
  systemctl stop linli.target
fi
echo "install.sh: code in $PREFIX/src, venv in $PREFIX/venv ..."
install -d -m 0755 "$PREFIX"
rm -rf "$PREFIX/src.new"
install -d -m 0755 "$PREFIX/src.new"
tar -C "$SRC" --exclude=./.git --exclude=./.venv --exclude=./var --exclude='*/__pycache__' \
  --exclude=./deploy/.env --exclude=./deploy/tls -cf - . | tar -C "$PREFIX/src.new" --no-same-owner -xf -
rm -rf "$PREFIX/src" && mv "$PREFIX/src.new" "$PREFIX/src"
rm -rf "$PREFIX/venv"
python3 -m venv "$PREFIX/venv"
"$PREFIX/venv/bin/pip" install -q --upgrade pip
# Editable: the services read their configuration from src/deploy/config.
"$PREFIX/venv/bin/pip" install -q -e "$PREFIX/src"
# The services cannot write under /opt (ProtectSystem=strict): compile now.
"$PREFIX/venv/bin/python" -m compileall -q "$PREFIX/src/services" >/dev/null

if [ ! -e "$ETC/linli.env" ]; then
  echo "install.sh: $ETC/linli.env (edit it, then: systemctl restart linli.target) ..."
  install -m 0640 -o root -g linli /dev/null "$ETC/linli.env"
  cat > "$ETC/linli.env" <<'ENV'
# Linli's settings, read by systemd (EnvironmentFile=) and by /usr/local/sbin/linli:
# KEY=value, one a line; a value with spaces in double quotes. README.md's
# "Running it" lists every setting. After a change: systemctl restart linli.target
#
# The broker as an administrator (a user tagged administrator on this vhost):
# `linli prepare` makes each service's own broker user from it, through the
# management API; the services themselves never run as this user.
AMQP_URI=amqp://guest:guest@localhost:5672/
#LINLI_AMQP_MANAGEMENT_URL=http://localhost:15672
# Each service's database: SQLite files in /var/lib/linli unless given, e.g.
#LINLI_WELFARE_DB=postgresql://linli@/linli_welfare
# The gateway, behind nginx on this machine; nginx's X-Forwarded-For is believed.
LINLI_HTTP_HOST=127.0.0.1
LINLI_HTTP_PORT=8000
LINLI_TRUSTED_PROXIES=127.0.0.1
LINLI_TIMEZONE=Asia/Shanghai
# The token secret and the key pair that vouches for RPC calls are made once
# in /var/lib/linli (jwt-secret, caller-key.pem) unless given here.
ENV
  # Webhook bodies link back to the alert here (nginx serves this name).
  echo "LINLI_PUBLIC_URL=https://$name" >> "$ETC/linli.env"
fi

if [ -n "$cert" ]; then
  echo "install.sh: the certificate $cert and its key ..."
  install -m 0644 -o root -g root "$cert" "$ETC/tls/cert.pem"
  install -m 0600 -o root -g root "$key" "$ETC/tls/key.pem"
elif [ ! -e "$ETC/tls/cert.pem" ]; then
  echo "install.sh: no certificate given: a self-signed one for $name (browsers will warn until it is replaced) ..."
  ( umask 077
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 825 \
      -keyout "$ETC/tls/key.pem" -out "$ETC/tls/cert.pem" -subj "/CN=$name" \
      -addext "subjectAltName=DNS:$name,DNS:localhost,IP:127.0.0.1" 2>/dev/null )
  chmod 0644 "$ETC/tls/cert.pem"
fi

echo "install.sh: nginx site and systemd units ..."
install -m 0644 "$SRC/deploy/single-host/nginx-linli.conf" /etc/nginx/sites-available/linli
ln -sfn ../sites-available/linli /etc/nginx/sites-enabled/linli
rm -f /etc/nginx/sites-enabled/default  # the package's welcome page on :80
nginx -t
for unit in linli-prepare.service linli@.service linli.target; do
  install -m 0644 "$SRC/deploy/single-host/$unit" "$UNITS/$unit"
done
install -m 0755 "$SRC/deploy/single-host/linli" /usr/local/sbin/linli

if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable --now nginx
  systemctl reload nginx
  systemctl enable linli.target
  systemctl restart linli.target
  echo "install.sh: started. systemctl status 'linli*'; journalctl -u 'linli@*' -f"
else
  echo "install.sh: systemd is not running here: start linli.target and nginx yourself" >&2
fi
echo "install.sh: next, the first admin: sudo linli admin create --username NAME"
