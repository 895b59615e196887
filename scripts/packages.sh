# Sourced by scripts/demo and scripts/test: Debian packages, each installed
# with apt-get only when it is missing.
#
# Building the package needs a venv (python3-venv: a bare Debian python3
# cannot make one), a C compiler and Python's headers (gcc, python3-dev:
# mypyc compiles the request path, setup.py).

missing=()

need_build_packages() {
  python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
  command -v gcc >/dev/null 2>&1 || missing+=(gcc)
  local include
  include=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  [ -f "$include/Python.h" ] || missing+=(python3-dev)
}

install_missing() {
  if [ ${#missing[@]} -gt 0 ]; then
    local sudo_if_needed=""
    if [ "$(id -u)" -ne 0 ]; then sudo_if_needed="sudo"; fi
    $sudo_if_needed apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_if_needed apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}
