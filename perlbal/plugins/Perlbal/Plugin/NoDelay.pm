package Perlbal::Plugin::NoDelay;

=head1 NAME

Perlbal::Plugin::NoDelay - TCP_NODELAY on client connections

=head1 SYNOPSIS

    # perl finds the module through PERL5LIB=perlbal/plugins
    LOAD NoDelay
    CREATE SERVICE site
        SET role    = reverse_proxy
        SET plugins = NoDelay
        ...

=head1 DESCRIPTION

Perlbal 1.80 answers a reproxied request (X-REPROXY-URL) with two writes to the
client: the response headers, then the body. On a kept-alive connection the
body waits, under Nagle's algorithm, for the client to acknowledge the headers,
and clients delay that acknowledgement (40 ms on Linux): every request after the
first on a connection then takes 40 ms more, whatever the load. This happens
whenever the rest of the response fits in one segment (always on loopback, whose
segments are 64 KB). Setting TCP_NODELAY on the client socket sends the body at once.

The option is set at the start of every request on the connection: one cheap
system call, and nothing to remember between requests.

=cut

use strict;
use warnings;

use Perlbal;
use Socket qw(IPPROTO_TCP TCP_NODELAY);

sub load { return 1; }

sub register {
    my ($class, $svc) = @_;
    $svc->register_hook('NoDelay', 'start_proxy_request', sub {
        my $client = shift;
        my $sock = $client && $client->{sock};
        setsockopt($sock, IPPROTO_TCP, TCP_NODELAY, 1) if $sock;
        return 0;    # carry on with the request as usual
    });
    return 1;
}

sub unregister {
    my ($class, $svc) = @_;
    $svc->unregister_hooks('NoDelay');
    return 1;
}

1;
