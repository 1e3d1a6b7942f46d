# A Perl handler for tinylambda-exec: _HANDLER=lambda_script.handler.
# The sub gets the event (a JSON string) and returns the response string.
use strict;
use warnings;
use JSON::PP qw(decode_json encode_json);

sub handler {
    my ($event) = @_;
    my $data = decode_json($event);
    $data->{reply} = "Hello from Perl on tinylambda-exec";
    return encode_json($data);
}

1;
