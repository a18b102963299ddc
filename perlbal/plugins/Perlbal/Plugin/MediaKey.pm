package Perlbal::Plugin::MediaKey;

=head1 NAME

Perlbal::Plugin::MediaKey - one reproxy cache key per stored file

=head1 SYNOPSIS

    # perl finds the module through PERL5LIB=perlbal/plugins
    LOAD MediaKey
    CREATE SERVICE site
        SET plugins = MediaKey
        ...

=head1 DESCRIPTION

Perlbal 1.80 keys its reproxy cache on "Host|request URI". Any client could
then force the cold path (a Django request) for every request, and fill the
cache, by adding a query string to an avatar URL or a port to the Host header.

For a request under the media prefix (PERLBAL_MEDIA_PREFIX, default /media/),
before the cache is consulted, this plugin drops the query string (the key alone
names a file: the app ignores it too) and reduces Host to its lower-case name
without a port (the app still refuses a name not in DJANGO_ALLOWED_HOSTS, and
Perlbal caches no refusal). Other requests are left as they are.

=cut

use strict;
use warnings;

use Perlbal;

sub load { return 1; }

sub register {
    my ($class, $svc) = @_;
    my $prefix = $ENV{PERLBAL_MEDIA_PREFIX} || '/media/';
    $svc->register_hook('MediaKey', 'start_proxy_request', sub {
        my $client = shift;
        my $hd = $client && $client->{req_headers} or return 0;
        my $uri = $hd->request_uri;
        return 0 unless defined $uri && index($uri, $prefix) == 0;
        if ((my $q = index($uri, '?')) >= 0) {
            $hd->set_request_uri(substr($uri, 0, $q));
        }
        my $host = $hd->header('Host');
        if (defined $host) {
            (my $name = lc $host) =~ s/:\d*\z//;
            $hd->header('Host', $name) if $name ne $host;
        }
        return 0;    # carry on with the request as usual
    });
    return 1;
}

sub unregister {
    my ($class, $svc) = @_;
    $svc->unregister_hooks('MediaKey');
    return 1;
}

1;
