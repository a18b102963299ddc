package Perlbal::Plugin::ReproxyFailover;

=head1 NAME

Perlbal::Plugin::ReproxyFailover - skip storage nodes that stopped answering

=head1 SYNOPSIS

    # perl finds the module through PERL5LIB=perlbal/plugins
    LOAD ReproxyFailover

=head1 DESCRIPTION

Perlbal 1.80 fetches a reproxied file (X-REPROXY-URL) from the URLs in the order
given, and learns nothing from a failure: every request whose first URL is on a
lost storage node waits for that node again. A node that refuses costs little. A
node that is gone (a stopped container, a dead machine: its address answers
nothing) costs the whole connection attempt, which Perlbal gives up only when
another request for the same node arrives more than 5 s later, or after TCP's own
two minutes. With a reproxy cache holding URL lists for an hour, one lost node
then stalls a third of all file requests.

This plugin, for every service at once (it changes Perlbal's reproxy manager):

=over

=item * gives up a connection to a storage node after
C<PERLBAL_REPROXY_CONNECT_TIMEOUT> seconds (default 1), so the waiting requests
move on to their next URL, as Perlbal does for a refused connection;

=item * remembers a node whose connection failed for C<PERLBAL_REPROXY_DOWN_FOR>
seconds (default 30) and, meanwhile, tries its URLs last: requests go to the
other copies first, and the node is tried again once that time is over (or when
no other copy is left).

=back

=cut

use strict;
use warnings;
no warnings 'redefine';

use Danga::Socket;
use Perlbal;
use Perlbal::ReproxyManager;

our $ConnectTimeout = $ENV{PERLBAL_REPROXY_CONNECT_TIMEOUT} || 1;
our $DownFor        = $ENV{PERLBAL_REPROXY_DOWN_FOR} || 30;
our %DownUntil;    # "ip:port" => time() until which its URLs go last

my $installed = 0;

sub _is_down {
    my $ipport = shift;
    my $until  = $DownUntil{$ipport} or return 0;
    return 1 if $until > time();
    delete $DownUntil{$ipport};
    return 0;
}

sub _install {
    my $note_bad = \&Perlbal::ReproxyManager::note_bad_backend_connect;
    *Perlbal::ReproxyManager::note_bad_backend_connect = sub {
        my ($manager, $be) = @_;
        if ($be && $be->{ipport}) {
            Perlbal::log('warning', "reproxy: $be->{ipport} did not connect; trying its URLs last for ${DownFor}s")
                unless _is_down($be->{ipport});
            $DownUntil{$be->{ipport}} = time() + $DownFor;
        }
        return $note_bad->(@_);
    };

    my $do_reproxy = \&Perlbal::ReproxyManager::do_reproxy;
    *Perlbal::ReproxyManager::do_reproxy = sub {
        my $cp   = $_[0];
        my $uris = $cp && $cp->{reproxy_uris};
        if ($uris && @$uris > 1) {
            # A stable partition: the tracker's order among the nodes that answer.
            my (@up, @down);
            push @{ _is_down("$_->[0]:$_->[1]") ? \@down : \@up }, $_ for @$uris;
            @$uris = (@up, @down);
        }
        my $ret = $do_reproxy->(@_);
        if ($uris && @$uris) {
            my $ipport = "$uris->[0][0]:$uris->[0][1]";
            my $be = $Perlbal::ReproxyManager::ReproxyConnecting{$ipport};
            _connect_deadline($ipport, $be) if $be;
        }
        return $ret;
    };
}

# Fail the connection attempt $be to $ipport if it is still pending after the timeout.
my %deadline_set;    # "$be" => 1 while a timer watches it
sub _connect_deadline {
    my ($ipport, $be) = @_;
    return if $deadline_set{"$be"}++;
    Danga::Socket->AddTimer($ConnectTimeout, sub {
        delete $deadline_set{"$be"};
        my $pending = $Perlbal::ReproxyManager::ReproxyConnecting{$ipport};
        return unless $pending && $pending == $be && !$be->{closed};
        Perlbal::ReproxyManager->get->note_bad_backend_connect($be);
        $be->close('connect_timeout');
    });
}

sub load {
    _install() unless $installed++;
    return 1;
}

sub register   { return 1; }
sub unregister { return 1; }

1;
