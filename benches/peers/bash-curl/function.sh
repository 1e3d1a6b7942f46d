# The handler of the shell peer (`_HANDLER=function.handler`): logs the event to stderr and
# returns it.
function handler () {
  EVENT_DATA=$1
  echo "$EVENT_DATA" 1>&2;
  echo "$EVENT_DATA"
}
