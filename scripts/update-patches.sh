#!/bin/bash
# Regenerate patches/ and patches/series from the commits on top of tag
# "base" in the QEMU tree (build/qemu), after changing them there with git
# commit / rebase.  The tree already holds exactly these commits, so the
# stamp configure keeps is updated too: re-applying them with `git am`
# would rewrite every patched file and rebuild most of QEMU.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=/dev/null
. "$TOP/build/config.sh"
stamp=$QEMU_SRC_DIR/.vbp-stamp
origin=$(cut -d' ' -f1 "$stamp")
rm -f "$TOP"/patches/*.patch
git -C "$QEMU_SRC_DIR" format-patch -q --no-signature --zero-commit -N \
    base..HEAD -o "$TOP/patches/"
(cd "$TOP/patches" && ls ./*.patch | sed 's|^\./||' >series)
want=$(cd "$TOP" && cat qemu-source.conf patches/series \
       $(sed -e 's/#.*//' -e '/^\s*$/d' -e 's|^|patches/|' patches/series) |
       sha256sum | cut -d' ' -f1)
echo "$origin $want" >"$stamp"
echo "update-patches: $(wc -l <"$TOP/patches/series") patches" >&2
