#!/usr/bin/perl
# A small prefork HTTP/1.1 keep-alive server using only core Perl modules.
#
# It is deliberately an "unmodified program": it sets no socket options, and it
# writes each response's header and body in two separate syswrite() calls. With
# Nagle's algorithm and the client's delayed ACK that costs ~40 ms per response
# on a keep-alive connection. Run it through perl-server.sh to see socktune fix it.
#
# Usage: perl perl-server.pl [PORT [WORKERS [BIND_ADDR]]]
#   PORT 8080, WORKERS 4 (0 = serve in this process, no fork), BIND_ADDR 127.0.0.1
use strict;
use warnings;
use IO::Socket::INET;

my $port = $ARGV[0] // 8080;
my $workers = $ARGV[1] // 4;
my $addr = $ARGV[2] // '127.0.0.1';

my $listener = IO::Socket::INET->new(
    LocalAddr => $addr,
    LocalPort => $port,
    Proto     => 'tcp',
    Listen    => 128,
) or die "perl-server: cannot listen on $addr:$port: $@\n";
$SIG{PIPE} = 'IGNORE';

my $body = "hello from perl-server.pl\n" x 40;    # 1040 bytes

sub write_all {
    my ($c, $data) = @_;
    while (length $data) {
        my $n = syswrite($c, $data);
        return 0 unless defined $n && $n > 0;
        substr($data, 0, $n, '');
    }
    return 1;
}

# One connection: read requests, answer each, until the client closes or asks us to.
sub serve {
    my ($c) = @_;
    my $buf = '';
    while (1) {
        while ($buf !~ /\r\n\r\n/) {
            my $n = sysread($c, $buf, 65536, length $buf);
            return unless $n;                      # EOF or error
            return if length $buf > 1 << 20;       # absurd header
        }
        $buf =~ s/\A(.*?)\r\n\r\n//s;
        my $head = $1;
        my ($method, $path, $proto) = $head =~ m{\A(\S+) (\S+) (HTTP/1\.\d)} or return;
        if ($head =~ /^Content-Length:\s*(\d+)/mi) {   # discard a request body
            my $want = $1;
            while (length $buf < $want) {
                my $n = sysread($c, $buf, 65536, length $buf);
                return unless $n;
            }
            substr($buf, 0, $want, '');
        }
        my $keep = $proto eq 'HTTP/1.1' ? $head !~ /^Connection:\s*close/mi
                                        : $head =~ /^Connection:\s*keep-alive/mi;
        my $out = $method eq 'HEAD' ? '' : $body;
        my $hdr = "HTTP/1.1 200 OK\r\n"
                . "Content-Type: text/plain\r\n"
                . "Content-Length: " . length($body) . "\r\n"
                . ($keep ? "" : "Connection: close\r\n") . "\r\n";
        write_all($c, $hdr) or return;    # write 1: the header
        write_all($c, $out) or return;    # write 2: the body
        return unless $keep;
    }
}

sub worker {
    while (1) {
        my $c = $listener->accept or next;
        serve($c);
        close $c;
    }
}

print STDERR "perl-server: listening on $addr:$port with ",
    ($workers > 0 ? "$workers workers" : "no fork"), " (pid $$)\n";
worker() if $workers <= 0;

my @kids;
for (1 .. $workers) {
    my $pid = fork // die "perl-server: fork: $!\n";
    if ($pid == 0) { $SIG{TERM} = $SIG{INT} = 'DEFAULT'; worker(); exit 0 }
    push @kids, $pid;
}
$SIG{TERM} = $SIG{INT} = sub { kill 'TERM', @kids; exit 0 };
1 while wait() > 0;    # returns when every worker has exited
