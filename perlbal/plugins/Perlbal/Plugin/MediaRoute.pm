package Perlbal::Plugin::MediaRoute;

=head1 NAME

Perlbal::Plugin::MediaRoute - stored files to the media tier, the rest to the site

=head1 SYNOPSIS

    LOAD MediaRoute
    CREATE SERVICE site
        SET role    = reverse_proxy
        SET pool    = app_servers
        SET plugins = MediaRoute ...
    CREATE SERVICE media
        SET role    = reverse_proxy
        SET pool    = media_servers
        SET plugins = MediaRoute ...

=head1 DESCRIPTION

A request under the media prefix (PERLBAL_MEDIA_PREFIX, default /media/) is
proxied by the service named C<media>, any other by the service named C<site>,
whichever of the two accepted the connection. Each service has its own pool, so
the requests for stored files (answered with X-REPROXY-URL) can go to a lean app
server and the pages and uploads to the site's.

A client is moved only when its request belongs to the other service, and it
stays there for the next request on its kept-alive connection: a browser or a
cache fetching files one after another pays for no move after the first. The
move is Perlbal's own (the service's adopt_base_client, which a selector service
uses), done before the service looks at its reproxy cache or asks for a backend,
so the reproxy cache used is the media service's.

Perlbal's stock way, a selector service with the Vpaths plugin, hands every
request over and back again; on Perl 5.10 or later each hand-over re-locks the
client's hash, which doubled the front's CPU per request for stored files.

=cut

use strict;
use warnings;
use Perlbal;

our $MEDIA = 'media';
our $SITE  = 'site';

sub load { return 1; }

sub register {
    my ($class, $svc) = @_;
    my $prefix = $ENV{PERLBAL_MEDIA_PREFIX} || '/media/';
    $svc->register_hook('MediaRoute', 'start_proxy_request', sub {
        my $client = shift;
        my $hd = $client && $client->{req_headers} or return 0;
        my $uri = $hd->request_uri;
        my $want = (defined $uri && index($uri, $prefix) == 0) ? $MEDIA : $SITE;
        return 0 if $client->{service}{name} eq $want;
        my $target = Perlbal->service($want) or return 0;
        $target->adopt_base_client($client);   # handles this request, and the next
        return 1;    # this service stops here
    });
    return 1;
}

sub unregister {
    my ($class, $svc) = @_;
    $svc->unregister_hooks('MediaRoute');
    return 1;
}

1;
