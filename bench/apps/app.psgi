# The PSGI app for Starman and plackup: any GET returns the file $BENCH_BODY.
use strict;
use warnings;

open(my $fh, '<:raw', $ENV{BENCH_BODY}) or die "BENCH_BODY: $!";
my $body = do { local $/; <$fh> };
close($fh);

sub {
    [200, ['Content-Type' => 'application/octet-stream', 'Content-Length' => length($body)], [$body]];
};
