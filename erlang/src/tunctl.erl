%% @doc Low-level interface of msantos/tunctl, kept for compatibility.
%%
%% In the original, `tunctl' returned the TUN/TAP file descriptor and
%% configured interfaces with ioctl(2). Here the TUN/TAP descriptor lives
%% in the `tunctl_port' program, so this module is a thin layer over
%% `tuncer':
%%
%% <ul>
%% <li>`create/0,1,2' start a `tuncer' process owned by (and linked to) the
%%     caller and return `{ok, FD, Device}': `FD' is the descriptor of
%%     `tuncer:getfd/1' (a socket the port relays packets through, usable
%%     with `open_port({fd, FD, FD}, [binary])'), and `Device' the
%%     interface name. The device goes away with `close/1' or when the
%%     caller exits (unless persistent).</li>
%% <li>`persist/2', `owner/2', `group/2', `filter/2', `stats/1', `close/1',
%%     `mtu/3', `ioctl/3' take that descriptor; any other integer returns
%%     `{error, ebadf}'. `tuncer:read/1,2' and `tuncer:write/2' take it
%%     too.</li>
%% <li>`up/2,3', `down/1', `addr_del/2,3', `dstaddr/2', `broadcast/2',
%%     `mtu/1,2' take a device name, as in the original, and only know
%%     devices opened through this application on this node (others return
%%     `{error, enodev}'): the port configures only devices it opened.</li>
%% </ul>
%%
%% ```
%% 1> {ok, FD, Dev} = tunctl:create(<<"tap3">>, [tap, no_pi]).
%% {ok,21,<<"tap3">>}
%% 2> tunctl:up(Dev, {198,18,0,1}).
%% ok
%% 3> tunctl:persist(FD, true).
%% ok
%% '''
-module(tunctl).

-export([
    create/0, create/1, create/2,
    close/1,
    persist/2, owner/2, group/2,
    filter/2, stats/1,
    up/2, up/3, down/1,
    addr_del/2, addr_del/3,
    dstaddr/2, broadcast/2,
    mtu/1, mtu/2, mtu/3,
    header/1,
    ioctl/3
]).

-type fd() :: integer().
-type uint16_t() :: 0..16#ffff.
-type posix() :: atom().

-export_type([fd/0, uint16_t/0]).

%% @doc Create a TAP device named by the kernel.
%% @equiv create(<<>>)
-spec create() -> {ok, fd(), binary()} | {error, term()}.
create() ->
    create(<<>>).

%% @doc Create a device with the default options (`[tap, no_pi]').
%% @equiv create(Ifname, [])
-spec create(iodata()) -> {ok, fd(), binary()} | {error, term()}.
create(Ifname) ->
    create(Ifname, []).

%% @doc Create a device (or attach to an existing one) with the options of
%% `tuncer:create/2', and return its handle and name.
%%
%% ```
%% 1> {ok, FD, Dev} = tunctl:create(<<"tun3">>, [tun, no_pi, {addr, "198.18.0.1"}, {mtu, 1400}]).
%% {ok,22,<<"tun3">>}
%% '''
-spec create(iodata(), [tuncer:option()]) -> {ok, fd(), binary()} | {error, term()}.
create(Ifname, Flags) when is_list(Flags) ->
    case tuncer:create(Ifname, Flags) of
        {ok, Dev} -> {ok, tuncer:getfd(Dev), tuncer:devname(Dev)};
        {error, _} = Error -> Error
    end.

%% @doc Close the device named by a handle.
-spec close(fd()) -> ok | {error, ebadf}.
close(FD) ->
    tunctl_fds:with_device(FD, fun tuncer:destroy/1).

%% @doc Keep the interface after it is closed (`TUNSETPERSIST').
%%
%% ```
%% 1> tunctl:persist(FD, true).
%% ok
%% '''
-spec persist(fd(), boolean()) -> ok | {error, posix()}.
persist(FD, Bool) when is_boolean(Bool) ->
    tunctl_fds:with_device(FD, fun(Dev) -> tuncer:persist(Dev, Bool) end).

%% @doc Set the user owning the interface: a uid or a user name (as
%% `tuncer:owner/2').
-spec owner(fd(), non_neg_integer() | string() | binary()) -> ok | {error, posix()}.
owner(FD, Owner) ->
    tunctl_fds:with_device(FD, fun(Dev) -> tuncer:owner(Dev, Owner) end).

%% @doc Set the group owning the interface: a gid or a group name (as
%% `tuncer:group/2').
-spec group(fd(), non_neg_integer() | string() | binary()) -> ok | {error, posix()}.
group(FD, Group) ->
    tunctl_fds:with_device(FD, fun(Dev) -> tuncer:group(Dev, Group) end).

%% @doc Filter the packets read from the device (as `tuncer:filter/2').
-spec filter(fd(), [tuncer:rule()]) -> ok | {error, posix()}.
filter(FD, Rules) ->
    tunctl_fds:with_device(FD, fun(Dev) -> tuncer:filter(Dev, Rules) end).

%% @doc The port's counters for the device (as `tuncer:stats/1').
-spec stats(fd()) -> {ok, tuncer:stats()} | {error, posix()}.
stats(FD) ->
    tunctl_fds:with_device(FD, fun tuncer:stats/1).

%% @doc Set the primary address of the named device and bring it up, as
%% `tuncer:up/2': IPv4 `/32' (as the original), IPv6 `/64'.
%%
%% ```
%% 1> tunctl:up(<<"tap3">>, {198,18,0,1}).
%% ok
%% '''
-spec up(iodata(), tuncer:ip()) -> ok | {error, posix()}.
up(Device, IP) ->
    by_name(Device, fun(Dev) -> tuncer:up(Dev, IP) end).

%% @doc Set the primary address of the named device with a prefix length
%% or netmask and bring it up (as `tuncer:up/3').
-spec up(iodata(), tuncer:ip(), tuncer:mask()) -> ok | {error, posix()}.
up(Device, IP, Mask) ->
    by_name(Device, fun(Dev) -> tuncer:up(Dev, IP, Mask) end).

%% @doc Bring the named device down.
-spec down(iodata()) -> ok | {error, posix()}.
down(Device) ->
    by_name(Device, fun tuncer:down/1).

%% @doc Remove an address from the named device (as `tuncer:addr_del/2').
-spec addr_del(iodata(), tuncer:ip()) -> ok | {error, posix()}.
addr_del(Device, IP) ->
    by_name(Device, fun(Dev) -> tuncer:addr_del(Dev, IP) end).

%% @doc Remove an address with a prefix length or netmask from the named
%% device (as `tuncer:addr_del/3').
-spec addr_del(iodata(), tuncer:ip(), tuncer:mask()) -> ok | {error, posix()}.
addr_del(Device, IP, Mask) ->
    by_name(Device, fun(Dev) -> tuncer:addr_del(Dev, IP, Mask) end).

%% @doc Set the point-to-point peer of the named device (as
%% `tuncer:dstaddr/2').
-spec dstaddr(iodata(), tuncer:ip()) -> ok | {error, posix()}.
dstaddr(Device, IP) ->
    by_name(Device, fun(Dev) -> tuncer:dstaddr(Dev, IP) end).

%% @doc Set the IPv4 broadcast address of the named device (as
%% `tuncer:broadcast/2').
-spec broadcast(iodata(), tuncer:ip()) -> ok | {error, posix()}.
broadcast(Device, IP) ->
    by_name(Device, fun(Dev) -> tuncer:broadcast(Dev, IP) end).

%% @doc The MTU of the named device, as `tuncer:mtu/1': `{ok, MTU}'.
-spec mtu(iodata()) -> {ok, pos_integer()} | {error, posix()}.
mtu(Device) ->
    by_name(Device, fun tuncer:mtu/1).

%% @doc Set the MTU of the named device, as `tuncer:mtu/2':
%% `{ok, FD, Device}'.
-spec mtu(iodata(), integer()) -> {ok, fd(), binary()} | {error, posix()}.
mtu(Device, MTU) ->
    by_name(Device, fun(Dev) -> tuncer:mtu(Dev, MTU) end).

%% @doc Set the MTU of a device given by its descriptor and name, as the
%% original's `tunctl:mtu/3': `{ok, FD, Device}'. `{error, ebadf}' when
%% `FD' is not a descriptor of `getfd/1', `{error, enodev}' when it is not
%% the named device's.
%%
%% ```
%% 1> tunctl:mtu(FD, <<"tap3">>, 1400).
%% {ok,21,<<"tap3">>}
%% '''
-spec mtu(fd(), iodata(), integer()) -> {ok, fd(), binary()} | {error, posix()}.
mtu(FD, Device, MTU) when is_integer(MTU) ->
    Name = iolist_to_binary(Device),
    tunctl_fds:with_device(FD, fun(Dev) ->
        case tuncer:devname(Dev) of
            Name -> tuncer:mtu(Dev, MTU);
            _ -> {error, enodev}
        end
    end).

%% @doc Run a TUN/TAP request of `include/tuntap.hrl' (`?TUNSETPERSIST',
%% `?TUNSETOWNER', `?TUNGETIFF', ...) on the device of a descriptor, as
%% the original's `tunctl:ioctl/3' did on its file descriptor. `Arg' is an
%% integer or a binary (for requests that take a pointer, the binary is
%% the structure; the result is not returned, as in the original).
%% Returns `ok' or `{error, Posix}'; any request that is not a TUN/TAP
%% request of `tuntap.hrl' returns `{error, eperm}'. The port runs the
%% request on its own descriptor, under its policy: `?TUNSETPERSIST',
%% `?TUNSETOWNER' and `?TUNSETGROUP' are refused (`eacces') when the
%% policy forbids `persist', `owner' or `group'.
%%
%% ```
%% 1> tunctl:ioctl(FD, ?TUNSETPERSIST, 1).
%% ok
%% 2> tunctl:ioctl(FD, 16#8913, 0).
%% {error,eperm}
%% '''
-spec ioctl(fd(), non_neg_integer(), integer() | binary()) -> ok | {error, posix()}.
ioctl(FD, Request, Arg) when is_integer(Request), is_integer(Arg); is_integer(Request), is_binary(Arg) ->
    tunctl_fds:with_device(FD, fun(Dev) -> tunctl_device:call(Dev, {port, {ioctl, Request, Arg}}) end).

%% @doc Decode the packet information header (`struct tun_pi') in front
%% of a packet read from a device created without `no_pi', as the
%% original did: `{tun_pi, Flags, Proto, Payload}', both fields in host
%% byte order (so on a little-endian machine `Proto' is the EtherType
%% byte-swapped: IPv6, `16#86DD' on the wire, reads `16#DD86'). A packet
%% shorter than 4 bytes returns `{error, einval}'. `tuncer:header/2'
%% decodes the same header as a map, with `proto' in network byte order,
%% and the virtio-net header too.
%%
%% ```
%% 1> tunctl:header(Packet).
%% {tun_pi,0,56710,<<96,0,...>>}
%% '''
-spec header(binary()) -> {tun_pi, uint16_t(), uint16_t(), binary()} | {error, einval}.
header(<<Flags:16/native, Proto:16/native, Payload/binary>>) ->
    {tun_pi, Flags, Proto, Payload};
header(Packet) when is_binary(Packet) ->
    {error, einval}.

by_name(Device, Fun) ->
    Name = iolist_to_binary(Device),
    Devs = [Dev || {_, Dev} <- tunctl_registry:handles(), devname(Dev) =:= Name],
    case Devs of
        [Dev | _] -> Fun(Dev);
        [] -> {error, enodev}
    end.

devname(Dev) ->
    try
        tuncer:devname(Dev)
    catch
        exit:_ -> undefined
    end.
