# relay-common.sh: sourced by the relay pair's hooks.
#
# record VALUE appends one line to $CHARM_DIR/relation.log, with one write(2)
# in O_APPEND mode:
#   <hook> <unit> <relation-id> <remote-unit> <departing-unit> <remote-app> <members> <value>
# "-" stands for an empty field; <members> is relation-list, comma-separated.
# Every hook records "start" when it begins and its result when it ends.
# A file block-<hook> in the charm directory makes the hook wait (after its
# start line, and writing its pid, which is its process group, to
# blocked-<hook>.pid) until the file is removed; block-end-<hook> makes it
# wait the same way at its end (its tool calls made, blocked-end-<hook>.pid),
# before its result line.

hook=$(basename -- "$0")

record() {
	local members=-
	if [ -n "${JUJU_RELATION_ID:-}" ]; then
		members=$(relation-list | paste -sd, -)
		members=${members:--}
	fi
	printf '%s %s %s %s %s %s %s %s\n' "$hook" "$JUJU_UNIT_NAME" "${JUJU_RELATION_ID:--}" "${JUJU_REMOTE_UNIT:--}" \
		"${JUJU_DEPARTING_UNIT:--}" "${JUJU_REMOTE_APP:--}" "$members" "${1:--}" >>"$CHARM_DIR/relation.log"
}

record start
if [ -e "$CHARM_DIR/block-$hook" ]; then
	echo $$ >"$CHARM_DIR/blocked-$hook.pid"
fi
while [ -e "$CHARM_DIR/block-$hook" ]; do
	sleep 0.05
done

# finish records the hook's result, once block-end-<hook> is gone.
finish() {
	if [ -e "$CHARM_DIR/block-end-$hook" ]; then
		echo $$ >"$CHARM_DIR/blocked-end-$hook.pid"
	fi
	while [ -e "$CHARM_DIR/block-end-$hook" ]; do
		sleep 0.05
	done
	record "$1"
}
