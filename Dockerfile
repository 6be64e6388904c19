# vm-runner: one container runs one libvirt VM, configured by environment variables.
#
#   docker build -t vm-runner .
#   docker run --rm -it --device /dev/kvm -p 2222:2222 vm-runner
#
# Needs BuildKit: the default builder since Docker 23, and DOCKER_BUILDKIT=1 on older Docker.
# Build arguments:
#   AARCH64=false     leave out qemu-system-aarch64 and its UEFI firmware (x86_64 guests only)
#   PASST=false       leave out passt. With it, NAT uses passt when the container may create a
#                     user namespace (--security-opt seccomp=unconfined, Podman), and QEMU's own
#                     user networking otherwise (Docker's default seccomp profile)
#   BUN_VERSION       the Bun release that compiles the binary, from the npm registry
#   DEBIAN_IMAGE      the Debian 13 base of every stage
# Behind a TLS-intercepting proxy, pass the proxy's CA certificates (a PEM bundle) as a secret:
#   docker build --secret id=ca-certificates,src=/etc/ssl/certs/ca-certificates.crt .
# docs/container.md describes running the image. scripts/build-image.sh wraps this build.

ARG DEBIAN_IMAGE=debian:trixie-slim

# ---- build: compile dist/vm-runner with Bun ----------------------------------------------------
FROM ${DEBIAN_IMAGE} AS build
ARG BUN_VERSION=1.4.5
ARG DEBIAN_FRONTEND=noninteractive
# Debian's Node.js and npm only fetch Bun, which the npm registry publishes as a package.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates nodejs npm \
    && rm -rf /var/lib/apt/lists/*
COPY docker/with-extra-ca.sh /usr/local/bin/with-extra-ca
RUN --mount=type=secret,id=ca-certificates \
    with-extra-ca npm install --global --no-audit --no-fund "bun@${BUN_VERSION}" \
    && bun --version
WORKDIR /src
# Dependencies first, so that a source change reuses the cached install.
COPY package.json bun.lock bunfig.toml tsconfig.json ./
RUN --mount=type=secret,id=ca-certificates \
    with-extra-ca bun install --frozen-lockfile --production
COPY distros.yaml ./
COPY src ./src
RUN bun run build && ./dist/vm-runner --version

# ---- novnc: the web console's static files, without the package's Python proxy -----------------
FROM ${DEBIAN_IMAGE} AS novnc
ARG DEBIAN_FRONTEND=noninteractive
# Debian's novnc package depends on websockify (Python) and Node.js. vm-runner proxies the
# websocket itself and serves only /usr/share/novnc, so the files are unpacked, not installed.
WORKDIR /tmp/novnc
RUN apt-get update \
    && apt-get download novnc \
    && dpkg-deb --extract novnc_*.deb /tmp/novnc/root \
    && test -f /tmp/novnc/root/usr/share/novnc/vnc.html \
    && rm -rf /var/lib/apt/lists/*

# ---- runtime ------------------------------------------------------------------------------------
FROM ${DEBIAN_IMAGE}
ARG AARCH64=true
ARG PASST=true
ARG DEBIAN_FRONTEND=noninteractive

# dpkg filters that keep out documentation, translations, and unused emulators and firmware.
COPY docker/dpkg-excludes.cfg /etc/dpkg/dpkg.cfg.d/vm-runner
# Every package here is one the binary runs or a file it reads:
#   libvirt-daemon, -driver-qemu      libvirtd and virtlogd, started by vm-runner itself
#   libvirt-clients                   virsh, which vm-runner drives libvirt with
#   qemu-system-x86, qemu-utils       the emulator and qemu-img (disk images, conversion)
#   ovmf                              UEFI firmware, with Secure Boot variants (BOOT_MODE)
#   swtpm, swtpm-tools                the emulated TPM (TPM=1)
#   virtiofsd                         shared folders (FILESYSTEM_*)
#   genisoimage                       the cloud-init NoCloud seed ISO
#   xz-utils zstd bzip2 7zip          unpacking compressed images and archives (7zip is the
#                                     real package behind Debian 13's p7zip-full and gives 7z)
#   openssl                           the web console's self-signed certificate
#   iproute2                          ip, to list the interfaces that NETWORK_BRIDGE and
#                                     NETWORK_DIRECT_DEV can name
#   ca-certificates                   HTTPS downloads of images
#   tini                              PID 1: forwards signals and reaps orphaned processes
# libvirt's default NAT network is not used (vm-runner's NAT is passt or QEMU's user
# networking), so neither its driver nor dnsmasq and iptables are installed.
# passt is left out by default: vm-runner prefers it whenever it is installed, and passt exits
# at start under Docker's default seccomp profile, which blocks the user namespace it sandboxes
# itself in. Without it, NAT runs on QEMU's built-in user networking, which needs nothing.
RUN set -eu; \
    optional_packages=""; \
    if [ "$AARCH64" = true ]; then optional_packages="qemu-system-arm qemu-efi-aarch64"; fi; \
    if [ "$PASST" = true ]; then optional_packages="$optional_packages passt"; fi; \
    apt-get update; \
    apt-get install -y --no-install-recommends \
        libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients \
        qemu-system-x86 qemu-utils ovmf swtpm swtpm-tools virtiofsd \
        genisoimage xz-utils zstd bzip2 7zip openssl iproute2 ca-certificates tini \
        $optional_packages; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/* /var/log/apt /var/log/dpkg.log /var/log/alternatives.log

# The container-friendly QEMU driver settings; each line is explained in the file.
COPY docker/qemu.conf /etc/libvirt/qemu.conf
COPY --from=novnc /tmp/novnc/root/usr/share/novnc /usr/share/novnc
COPY --from=build /src/dist/vm-runner /usr/local/bin/vm-runner
# The binary runs guest-exec when invoked under that name.
RUN ln -s vm-runner /usr/local/bin/guest-exec

ENV LANG=C.UTF-8 \
    LIBVIRT_DEFAULT_URI=qemu:///system

# /data: a volume mounted here keeps images, disks and firmware variables across containers
# and turns PERSIST on. There is deliberately no VOLUME instruction: it would give every
# container an anonymous volume at /data, so every VM would persist into a volume that
# nothing reuses. Mount one explicitly: -v vm-data:/data.

# Default ports: SSH_PORT, VNC_PORT, NOVNC_PORT, REDFISH_PORT.
EXPOSE 2222 5900 6080 8443

# SIGTERM starts the guest's shutdown: ACPI, then the guest agent, then a hard stop once
# SHUTDOWN_TIMEOUT (90 s by default) has passed. Docker's own stop timeout is 10 s, after which
# it kills the VM, so give it SHUTDOWN_TIMEOUT plus 10 s: docker stop -t 100, or
# docker run --stop-timeout 100.
STOPSIGNAL SIGTERM

# Healthy once the domain runs and its guest agent responds. The start period covers an image
# download and a first boot without KVM, and a failure inside it does not count.
HEALTHCHECK --interval=10s --timeout=10s --start-period=10m --retries=3 \
    CMD ["vm-runner", "health"]

# tini forwards SIGTERM to vm-runner alone, because libvirtd and virtlogd, which vm-runner
# starts in process groups of their own, must outlive the guest's shutdown. -s keeps tini
# reaping orphans when it is not PID 1 (docker run --init).
ENTRYPOINT ["/usr/bin/tini", "-s", "--", "/usr/local/bin/vm-runner"]
CMD []
