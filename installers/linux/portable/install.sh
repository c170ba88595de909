#!/bin/sh
# Installs this unpacked NanoClaw folder for you alone (no root): the `nanoclaw` command in ~/.local/bin and NanoClaw
# in your applications menu, with its icon. Keep the folder where it is: the menu and the command point into it.
#   ./install.sh              install (again: it replaces the links and the menu entry)
#   ./install.sh --uninstall  remove the command and the menu entry; your NanoClaw data is kept
set -eu

here=$(cd "$(dirname "$0")" && pwd)
bin_dir="${XDG_BIN_HOME:-$HOME/.local/bin}"
data_dir="${XDG_DATA_HOME:-$HOME/.local/share}"
entry="$data_dir/applications/nanoclaw.desktop"
icons="$data_dir/icons/hicolor"

if [ "${1:-}" = "--uninstall" ]; then
    rm -f "$bin_dir/nanoclaw" "$entry"
    for icon in "$here"/share/icons/hicolor/*/apps/nanoclaw.*; do
        rm -f "$icons/${icon#"$here/share/icons/hicolor/"}"
    done
    echo "NanoClaw's command and menu entry are removed. Your data is kept in $data_dir/nanoclaw;"
    echo "delete that folder yourself if you want it gone."
    exit 0
fi

mkdir -p "$bin_dir" "$data_dir/applications"
ln -sfn "$here/nanoclaw" "$bin_dir/nanoclaw"
for icon in "$here"/share/icons/hicolor/*/apps/nanoclaw.*; do
    target="$icons/${icon#"$here/share/icons/hicolor/"}"
    mkdir -p "$(dirname "$target")"
    cp "$icon" "$target"
done
# The menu starts the command by its full path: a desktop session's PATH often lacks ~/.local/bin.
sed "s|^Exec=.*|Exec=\"$bin_dir/nanoclaw\"|" "$here/share/applications/nanoclaw.desktop" > "$entry"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$data_dir/applications" || true

echo "NanoClaw is installed: open it from your applications menu, or run $bin_dir/nanoclaw"
case ":$PATH:" in
    *":$bin_dir:"*) ;;
    *) echo "($bin_dir is not on your PATH: add it to run plain \`nanoclaw\` in a terminal)" ;;
esac
missing=""
command -v podman >/dev/null 2>&1 || missing="$missing podman"
[ -n "$missing" ] && echo "NanoClaw also needs:$missing (install it with your distribution's package manager)"
exit 0
