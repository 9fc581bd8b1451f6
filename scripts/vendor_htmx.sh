#!/usr/bin/env bash
# Vendor htmx 4 and the extensions the dashboard uses from the npm package `htmx.org`.
# Usage: scripts/vendor_htmx.sh [VERSION] [DEST]   (needs npm; touches nothing outside DEST)
# Writes DEST/{htmx.js,htmx.min.js,ext/hx-ws*.js,ext/hx-csp*.js,LICENSE,VERSION,SHA256SUMS}.
# Also copies the package's dist/skills/*.md to $HTMX_SKILLS_DIR when that variable is set.
set -euo pipefail

VERSION="${1:-4.0.1}"
DEST="${2:-static/signals_dashboard/vendor/htmx}"
FILES=(
    dist/htmx.js
    dist/htmx.min.js
    dist/ext/hx-ws.js
    dist/ext/hx-ws.min.js
    dist/ext/hx-csp.js
    dist/ext/hx-csp.min.js
    LICENSE
)

case "$VERSION" in
    4.*) ;;
    *) echo "error: the dashboard needs htmx 4.x, got $VERSION" >&2; exit 1 ;;
esac
command -v npm >/dev/null || { echo "error: npm is needed to vendor htmx" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "htmx.org@$VERSION" >/dev/null)
tarball="$(ls "$work"/htmx.org-*.tgz)"
tar -xzf "$tarball" -C "$work"
pkg="$work/package"
actual="$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$pkg/package.json" | head -n1)"

for f in "${FILES[@]}"; do
    [ -f "$pkg/$f" ] || { echo "error: htmx.org@$actual has no $f" >&2; exit 1; }
done

rm -rf "$DEST"
mkdir -p "$DEST/ext"
for f in "${FILES[@]}"; do
    cp "$pkg/$f" "$DEST/${f#dist/}"
done

{
    echo "htmx.org $actual"
    echo "source: npm pack htmx.org@$actual"
    echo "tarball-sha256: $(sha256sum "$tarball" | cut -d' ' -f1)"
} > "$DEST/VERSION"
(cd "$DEST" && find . -type f ! -name SHA256SUMS ! -name VERSION | sed 's|^\./||' | LC_ALL=C sort \
    | xargs sha256sum > SHA256SUMS)

if [ -n "${HTMX_SKILLS_DIR:-}" ] && [ -d "$pkg/dist/skills" ]; then
    mkdir -p "$HTMX_SKILLS_DIR"
    cp "$pkg"/dist/skills/*.md "$HTMX_SKILLS_DIR"/
    echo "copied htmx guidance to $HTMX_SKILLS_DIR"
fi
echo "vendored htmx.org $actual into $DEST"
