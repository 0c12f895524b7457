#!/usr/bin/env bash
# Builds the Debian package of the library and the launcher into target/package/ (under
# $CARGO_TARGET_DIR when that is set) and prints its path last:
#
#   bash scripts/package.sh && dpkg -i target/package/socktune_*.deb
#
# dpkg-deb packs a staged tree: no packaging tool to install. The package has no maintainer
# scripts and never touches /etc/ld.so.preload (docs/install.md says why), so `dpkg -r socktune`
# leaves nothing behind. Depends comes from dpkg-shlibdeps when dpkg-dev is installed; without
# it, from the binaries themselves (objdump): libc6 at the newest GLIBC_ symbol version they
# use, and libgcc-s1 when they link libgcc_s (unwinding).
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "package: $*" >&2; exit 1; }
for tool in dpkg-deb dpkg gzip objdump; do
    command -v "$tool" >/dev/null || fail "$tool is missing (Debian: dpkg, gzip, binutils)"
done

target=${CARGO_TARGET_DIR:-target}
"${CARGO:-cargo}" build --release -p socktune-preload -p socktune-cli >&2
lib=$target/release/libsocktune.so shim=$target/release/libsocktune_shim.so bin=$target/release/socktune

version=$(awk -F'"' '/^\[workspace.package\]/ { w = 1; next } /^\[/ { w = 0 }
                     w && /^version *=/ { print $2; exit }' Cargo.toml)
[ -n "$version" ] || fail "no version in Cargo.toml's [workspace.package]"
arch=$(dpkg --print-architecture)
triplet=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
[ -n "$triplet" ] || fail "no multiarch triplet (neither dpkg-architecture nor gcc gave one)"

# dpkg-shlibdeps wants the tree at debian/<package> (with its DEBIAN/) beside a debian/control.
work=$target/package/build
root=$work/debian/socktune
rm -rf "$work"
install -d "$root/DEBIAN"
docs=$root/usr/share/doc/socktune
install -D -m 0755 "$bin" "$root/usr/bin/socktune"
install -D -m 0644 "$lib" "$root/usr/lib/$triplet/socktune/libsocktune.so"
# The stub loads the shim from its own directory.
install -D -m 0644 "$shim" "$root/usr/lib/$triplet/socktune/libsocktune_shim.so"
# As Debian ships binaries: without debug information (the library is loaded into every
# process started under it), symbols kept for backtraces.
strip --strip-debug "$root/usr/bin/socktune" "$root/usr/lib/$triplet/socktune/libsocktune.so" \
    "$root/usr/lib/$triplet/socktune/libsocktune_shim.so"
for page in socktune.1 socktune.7; do
    section=man${page##*.}
    install -d "$root/usr/share/man/$section"
    gzip -9n <"docs/$page" >"$root/usr/share/man/$section/$page.gz"
done
install -D -m 0644 completions/socktune.bash "$root/usr/share/bash-completion/completions/socktune"
install -D -m 0644 completions/_socktune "$root/usr/share/zsh/vendor-completions/_socktune"
install -D -m 0644 LICENSE "$docs/copyright"
install -D -m 0644 README.md "$docs/README.md"
cp -r examples "$docs/examples"
# The drop-in names the x86_64 triplet; the library is where this architecture's is.
sed -i "s|/usr/lib/x86_64-linux-gnu/|/usr/lib/$triplet/|" "$docs/examples/socktune.conf"
chmod -R u=rwX,go=rX "$docs"

if command -v dpkg-shlibdeps >/dev/null; then
    printf 'Source: socktune\n\nPackage: socktune\nArchitecture: any\n' >"$work/debian/control"
    depends=$(cd "$work" && dpkg-shlibdeps -O -e"debian/socktune/usr/bin/socktune" \
        -e"debian/socktune/usr/lib/$triplet/socktune/libsocktune.so" \
        -e"debian/socktune/usr/lib/$triplet/socktune/libsocktune_shim.so")
    depends=${depends#shlibs:Depends=}
    echo "package: Depends from dpkg-shlibdeps: $depends" >&2
else
    glibc=$(objdump -T "$bin" "$lib" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n 1)
    [ -n "$glibc" ] || fail "objdump found no GLIBC_ symbol version in $bin and $lib"
    depends="libc6 (>= ${glibc#GLIBC_})"
    if objdump -p "$bin" "$lib" | grep -q 'NEEDED *libgcc_s\.so'; then
        depends+=", libgcc-s1"
    fi
    echo "package: Depends from objdump (no dpkg-shlibdeps): $depends" >&2
fi

cat >"$root/DEBIAN/control" <<EOF
Package: socktune
Version: $version
Architecture: $arch
Maintainer: socktune developers <socktune@localhost>
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Depends: $depends
Section: net
Priority: optional
Description: TCP tuning for unmodified Linux programs (LD_PRELOAD)
 libsocktune.so gives dynamically linked (glibc) programs TCP_DEFER_ACCEPT,
 cork per response, quickack off, TCP Fast Open, TCP_NODELAY and a listen
 backlog override, set by SOCKTUNE_* environment variables; the socktune
 launcher sets them from flags, checks a program beforehand and compares the
 arms of an A/B run. Only the processes started with the variables are tuned.
EOF

deb=$target/package/socktune_${version}_$arch.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >&2
rm -rf "$work"
echo "$deb"
