#!/bin/bash
# --help and the man pages agree: every option a command's --help lists is
# documented in vunify(8) under that command, every command of `vunify
# --help` has a section, every exit code of vunify.h is documented, and the
# pages render without warnings.
source "$(dirname "$0")/../lib.sh"
command -v man >/dev/null || skip "man (man-db) is not installed"
page=$SRCDIR/man/vunify.8
rendered=$(mktemp); at_exit "rm -f '$rendered'"
MANWIDTH=200 man -l "$page" 2>"$rendered.err" | col -b > "$rendered"
[ ! -s "$rendered.err" ] || fail "vunify.8 renders with warnings: $(cat "$rendered.err")"
for p in vunify.conf.5 vunify-pool.5; do
	MANWIDTH=200 man --warnings -l "$SRCDIR/man/$p" 2>&1 >/dev/null | grep -v '^$' && fail "$p renders with warnings" || true
done
section() { # the rendered text of one command's SS section
	awk -v c="$1" '/^   [a-z]+$/ { on = ($1 == c) } /^[A-Z]/ { on = 0 } on' "$rendered"
}
cmds=$("$VUNIFY" --help | awk '/^Commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }')
[ -n "$cmds" ] || fail "no commands in vunify --help"
for c in $cmds; do
	text=$(section "$c")
	[ -n "$text" ] || fail "vunify(8) has no section for '$c'"
	for opt in $("$VUNIFY" "$c" --help | grep -oE '^ +(-[a-zA-Z], )?--[a-z-]+' | grep -oE -- '--[a-z-]+'); do
		grep -qF -- "$opt" <<<"$text" || fail "vunify $c --help lists $opt, vunify(8) does not"
	done
	for opt in $(grep -oE '^       (-[a-zA-Z], )?--[a-z-]+' <<<"$text" | grep -oE -- '--[a-z-]+'); do
		"$VUNIFY" "$c" --help | grep -qF -- "$opt" || fail "vunify(8) documents $c $opt, --help does not"
	done
done
for code in $(grep -oE '= [0-9]+,' "$SRCDIR/vunify/vunify.h" | grep -oE '[0-9]+'); do
	awk '/^EXIT STATUS/ { on = 1 } /^ENVIRONMENT/ { on = 0 } on' "$rendered" | grep -qE "^       $code( |\$)" ||
		fail "exit code $code is not in vunify(8)"
done
grep -q "vunify.conf(5)" "$rendered" && grep -q "vunify-pool(5)" "$rendered" || fail "SEE ALSO incomplete"
