//! The glue that runs a function in a `.sh` file or a sub in a `.pl` file: passed to the
//! interpreter with `-c`/`-e`, so nothing is copied or rewritten on disk.
//!
//! Each takes the file's absolute path and the function's name as arguments. The per-call
//! ones run one event and exit with the handler's status; the persistent ones speak the
//! protocol in `frame.rs`, calling the handler once per frame in the same process.

/// bash, one event: source the file, call the function with the event as `$1` (passed as
/// the third argument when it fits in one; otherwise read from stdin, and given to the
/// function on its stdin again). Variable names start with `_tl_` so the user's file is
/// unlikely to clobber them; the file is sourced with no positional parameters, as the
/// classic bootstrap did. The status of its last top-level command is not the function's
/// (a file ending in `[ -n "$DEBUG" ] && set -x` is fine), and a `set -e` at its top
/// applies to the function, not to the sourcing: a file that does not parse is caught at
/// init (`check.rs`).
pub(crate) const SHELL_ONCE: &str = r#"_tl_file=$1 _tl_fn=$2 _tl_n=$#
[ $# -gt 2 ] && _tl_event=$3
set --
. "$_tl_file" || :
if [ "$_tl_n" -gt 2 ]; then
  "$_tl_fn" "$_tl_event"
else
  _tl_event=$(cat)
  { trap '' PIPE; printf %s "$_tl_event" 2>/dev/null; :; } | "$_tl_fn" "$_tl_event"
fi
"#;

/// bash, persistent: source the file once, move the protocol stream to a descriptor bash
/// picks (10 or above, clear of the ones scripts use) so the function's stdin becomes
/// /dev/null once rather than by a redirection per call (which costs bash ~30 µs), then
/// per frame export the context (nothing when it is empty: `export` alone would list the
/// whole environment into the reply), call the function with the event as `$1`, and end the
/// reply with NUL and the function's status (empty for 0). In a multibyte locale the
/// frame is read under `LC_ALL=C` so that `read -N` counts bytes (checked per frame, in
/// case the handler changes the locale); the context is split with a local IFS, and its
/// values never hold glob characters (see `vars.rs`). The file is sourced as in
/// [`SHELL_ONCE`].
pub(crate) const SHELL_LOOP: &str = r#"_tl_file=$1 _tl_fn=$2
set --
. "$_tl_file" || :
exec {_tl_in}<&0 0</dev/null
_tl_export() { local IFS=' '; [ -z "$1" ] || export $1; }
_tl_mb=$'\xc3\xa9'
while IFS=' ' read -r -u "$_tl_in" _tl_n _tl_c; do
  if [ "${#_tl_mb}" = 1 ]; then
    LC_ALL=C IFS= read -r -u "$_tl_in" -N "$((_tl_n + _tl_c))" _tl_frame
  else
    IFS= read -r -u "$_tl_in" -N "$((_tl_n + _tl_c))" _tl_frame
  fi
  unset LAMBDA_REQUEST_ID LAMBDA_DEADLINE_MS LAMBDA_INVOKED_FUNCTION_ARN _X_AMZN_TRACE_ID
  _tl_export "${_tl_frame:0:_tl_c}"
  "$_tl_fn" "${_tl_frame:_tl_c}"
  _tl_s=$?
  printf '\0%s\n' "${_tl_s#0}"
done
"#;

/// perl, one event: read the event from stdin, load the file, call the sub with the event
/// and print what it returns (as the classic template did, without the template). The file
/// is run with `do`, not `require`: like a script, it need not end with a true value
/// (`1;`). One that does not compile is caught at init (`check.rs`); a `die` while it
/// loads ends the process with the message on stderr.
pub(crate) const PERL_ONCE: &str = r#"my ($file, $name) = @ARGV; @ARGV = ();
binmode STDIN; binmode STDOUT;
my $event = do { local $/; <STDIN> };
$event = '' unless defined $event;
do $file; die $@ if $@;
my $sub = \&{ $name =~ /::/ ? $name : "main::$name" };
defined &$sub or die "tinylambda-exec: $file defines no sub $name\n";
my $response = $sub->($event);
print $response if defined $response;
"#;

/// perl, persistent: load the file once (as [`PERL_ONCE`] does), move the protocol stream
/// off STDIN (which becomes /dev/null), then per frame set the context in %ENV, call the
/// sub, and reply in the counted form, so the response may hold any bytes, NUL included (a
/// string with characters over 255 goes out as UTF-8, as `print` would send it). A `die`
/// is reported like the per-call glue's exit: the message on stderr, status 255.
pub(crate) const PERL_LOOP: &str = r#"my ($file, $name) = @ARGV; @ARGV = ();
open(my $in, '<&', \*STDIN) or die "tinylambda-exec: stdin: $!\n";
open(STDIN, '<', '/dev/null') or die "tinylambda-exec: /dev/null: $!\n";
binmode $in; binmode STDOUT; $| = 1;
do $file; die $@ if $@;
my $sub = \&{ $name =~ /::/ ? $name : "main::$name" };
defined &$sub or die "tinylambda-exec: $file defines no sub $name\n";
while (defined(my $head = <$in>)) {
    my ($n, $c) = split ' ', $head;
    read($in, my $frame, $n + $c) == $n + $c or last;
    delete @ENV{qw(LAMBDA_REQUEST_ID LAMBDA_DEADLINE_MS LAMBDA_INVOKED_FUNCTION_ARN _X_AMZN_TRACE_ID)};
    for (split / /, substr($frame, 0, $c)) { my ($k, $v) = split /=/, $_, 2; $ENV{$k} = $v }
    my $response = eval { $sub->(substr($frame, $c)) };
    if ($@) { print STDERR $@; print "\0", "255\n"; next }
    $response = '' unless defined $response;
    utf8::encode($response) unless utf8::downgrade($response, 1);
    print "\0=", length($response), "\n", $response;
}
"#;
