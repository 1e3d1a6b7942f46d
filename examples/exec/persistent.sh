#!/bin/bash
# A tinylambda-exec handler that stays up (TINYLAMBDA_PERSISTENT=1, _HANDLER=persistent.sh).
export LC_ALL=C                       # read -N counts bytes
count=0
while read -r n c; do                 # header line: event bytes, context bytes
  read -r -N "$c" context             # LAMBDA_REQUEST_ID=… _X_AMZN_TRACE_ID=… (words)
  read -r -N "$n" event               # the event itself
  count=$((count + 1))
  [ -n "$event" ] || { printf 'empty event\0Function.EmptyEvent\n'; continue; }
  printf '{"pid": %d, "count": %d, "event": %s}\0\n' $$ "$count" "$event"
done
