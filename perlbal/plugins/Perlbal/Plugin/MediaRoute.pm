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

While the media service cannot reach any of its servers (the last connect to
each failed, within the second Perlbal waits before trying one again; a connect
still pending after C<PERLBAL_MEDIA_CONNECT_TIMEOUT> seconds, default 1, counts as
failed, as for a stopped container whose address answers nothing), its
requests go to the site service instead, whose app servers answer them too,
only more slowly; so do the GET and HEAD requests waiting in its queue when the
last server fails, which would otherwise wait for a server until the client's
idle timeout. A request with a body stays where it is.

Those two changes to Perlbal's connect handling are the media service's alone:
registering the plugin on it blesses it into Perlbal::Plugin::MediaRoute::Service,
a subclass of Perlbal::Service that extends add_pending_connect and
note_bad_backend_connect (unregistering blesses it back). Perlbal's own methods,
and every other service, stay as Perlbal 1.80 has them.

Perlbal's stock way, a selector service with the Vpaths plugin, hands every
request over and back again; on Perl 5.10 or later each hand-over re-locks the
client's hash, which doubled the front's CPU per request for stored files.

=cut

use strict;
use warnings;
use Danga::Socket;
use Hash::Util ();
use Perlbal;

our $MEDIA = 'media';
our $SITE  = 'site';
our $ConnectTimeout = $ENV{PERLBAL_MEDIA_CONNECT_TIMEOUT} || 1;

my @QUEUES = qw(waiting_clients_highpri waiting_clients waiting_clients_lowpri);

# Whether none of the service's servers can be reached now: no idle connection to one,
# and every one of them is in Perlbal's no-retry-yet list after a failed connect.
# (The usual case, no failed connect, costs one look at an empty hash.)
sub unreachable {
    my Perlbal::Service $svc = shift;
    my $failed = $svc->{backend_no_spawn};
    return 0 unless $failed && %$failed;
    my $pool = $svc->{pool} or return 0;
    return 0 if !$pool->{node_count} || grep { !$_->{closed} } @{$svc->{bored_backends}};
    return !grep { !$failed->{"$_->[0]:$_->[1]"} } @{$pool->{nodes}};
}

# The GET and HEAD requests waiting for one of the media service's servers, to the site.
sub hand_over_waiting {
    my ($media, $site) = @_;
    my @moved;
    for my $queue (@QUEUES) {
        my @kept;
        for my $client (@{$media->{$queue}}) {
            next if $client->{closed};
            if ($client->{request_body_length} || $client->{content_length_remain}) {
                push @kept, $client;
                next;
            }
            push @moved, $client;
            $media->{waiting_client_count}--;
            delete $media->{waiting_client_map}{$client->{fd}};
        }
        @{$media->{$queue}} = @kept;
    }
    $site->adopt_base_client($_) for @moved;
}

# Nothing of Perlbal's own is changed: the media service alone is blessed into
# Perlbal::Plugin::MediaRoute::Service (below), a subclass of Perlbal::Service.
sub load { return 1 }

# A service is a restricted hash (fields): its keys are unlocked for the bless, then
# locked again to the same set.
sub rebless {
    my ($svc, $class) = @_;
    my @legal = Hash::Util::legal_ref_keys($svc);
    Hash::Util::unlock_ref_keys($svc);
    bless $svc, $class;
    Hash::Util::lock_ref_keys($svc, @legal);
}

sub register {
    my ($class, $svc) = @_;
    rebless($svc, 'Perlbal::Plugin::MediaRoute::Service')
        if $svc->{name} eq $MEDIA && ref($svc) eq 'Perlbal::Service';
    my $prefix = $ENV{PERLBAL_MEDIA_PREFIX} || '/media/';
    $svc->register_hook('MediaRoute', 'start_proxy_request', sub {
        my $client = shift;
        my $hd = $client && $client->{req_headers} or return 0;
        my $uri = $hd->request_uri;
        my $want = (defined $uri && index($uri, $prefix) == 0) ? $MEDIA : $SITE;
        my $target = Perlbal->service($want) or return 0;
        if ($want eq $MEDIA && unreachable($target)) {
            $want = $SITE;
            $target = Perlbal->service($SITE) or return 0;
        }
        return 0 if $client->{service}{name} eq $want;
        $target->adopt_base_client($client);   # handles this request, and the next
        return 1;    # this service stops here
    });
    return 1;
}

sub unregister {
    my ($class, $svc) = @_;
    $svc->unregister_hooks('MediaRoute');
    rebless($svc, 'Perlbal::Service') if ref($svc) eq 'Perlbal::Plugin::MediaRoute::Service';
    return 1;
}

# The media service's class: Perlbal::Service with two of its methods extended, for this
# one service (Perlbal 1.80 has no hook for a failed or hanging backend connect).
package Perlbal::Plugin::MediaRoute::Service;

use strict;
use warnings;
use base 'Perlbal::Service';

# Perlbal gives up a connect that hangs only when it next spawns a backend, 5 s on, and
# then not as a failure: a media server that is gone would hold every request.
sub add_pending_connect {
    my ($svc, $be) = @_;
    my @result = $svc->SUPER::add_pending_connect($be);
    return @result unless $be;
    my $timeout = $Perlbal::Plugin::MediaRoute::ConnectTimeout;
    Danga::Socket->AddTimer($timeout, sub {
        my $pending = $svc->{pending_connects}{$be->{ipport}};
        return unless $pending && $pending == $be && !$be->{closed};
        return unless $be->{state} eq 'connecting';
        Perlbal::log('warning', "media: $be->{ipport} did not connect in ${timeout}s");
        $svc->note_bad_backend_connect($be, 1);
        $be->close('connect_timeout');
    });
    return @result;
}

# After the last reachable server failed, the requests waiting for one go to the site.
sub note_bad_backend_connect {
    my $svc = shift;
    my @result = $svc->SUPER::note_bad_backend_connect(@_);
    if (Perlbal::Plugin::MediaRoute::unreachable($svc)) {
        my $site = Perlbal->service($Perlbal::Plugin::MediaRoute::SITE);
        Perlbal::Plugin::MediaRoute::hand_over_waiting($svc, $site) if $site;
    }
    return @result;
}

1;
