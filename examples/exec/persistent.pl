#!/usr/bin/perl
# A tinylambda-exec handler that stays up (TINYLAMBDA_PERSISTENT=1, _HANDLER=persistent.pl).
use strict; use warnings;
binmode STDIN; binmode STDOUT; $| = 1;        # bytes in, bytes out, unbuffered
my $count = 0;
while (my $header = <STDIN>) {                 # header line: event bytes, context bytes
    my ($n, $c) = split ' ', $header;
    read(STDIN, my $context, $c);              # LAMBDA_REQUEST_ID=… _X_AMZN_TRACE_ID=… (words)
    read(STDIN, my $event, $n);                # the event itself
    $count++;
    if ($event eq '') { print "empty event\0Function.EmptyEvent\n"; next }
    print qq({"pid": $$, "count": $count, "event": $event}), "\0\n";
}
