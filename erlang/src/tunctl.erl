%% @doc Low-level interface of msantos/tunctl, kept for compatibility.
%%
%% In the original, `tunctl' returned a real file descriptor and configured
%% interfaces with ioctl(2). Here the descriptor lives in the `tunctl_port'
%% program, so this module is a thin layer over `tuncer':
%%
%% <ul>
%% <li>`create/0,1,2' start a `tuncer' process owned by (and linked to) the
%%     caller and return `{ok, FD, Device}': `FD' is its integer handle
%%     (`tuncer:getfd/1'), in place of the file descriptor, and `Device' the
%%     interface name. The device goes away with `close/1' or when the
%%     caller exits (unless persistent).</li>
%% <li>`persist/2', `owner/2', `group/2', `filter/2', `stats/1', `close/1'
%%     take that handle; an unknown handle returns `{error, ebadf}'. Use
%%     `tuncer:read/1,2' and `tuncer:write/2' with it for I/O.</li>
%% <li>`up/2,3', `down/1', `addr_del/2,3', `dstaddr/2', `broadcast/2',
%%     `mtu/1,2' take a device name, as in the original, and only know
%%     devices opened through this application on this node (others return
%%     `{error, enodev}'): the port configures only devices it opened.</li>
%% </ul>
%%
%% ```
%% 1> {ok, FD, Dev} = tunctl:create(<<"tap3">>, [tap, no_pi]).
%% {ok,1,<<"tap3">>}
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
    mtu/1, mtu/2,
    header/1
]).

-type fd() :: tuncer:handle().
-type posix() :: atom().

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
%% {ok,2,<<"tun3">>}
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
    tunctl_registry:with_device(FD, fun tuncer:destroy/1).

%% @doc Keep the interface after it is closed (`TUNSETPERSIST').
%%
%% ```
%% 1> tunctl:persist(FD, true).
%% ok
%% '''
-spec persist(fd(), boolean()) -> ok | {error, posix()}.
persist(FD, Bool) when is_boolean(Bool) ->
    tunctl_registry:with_device(FD, fun(Dev) -> tuncer:persist(Dev, Bool) end).

%% @doc Set the user owning the interface: a uid or a user name (as
%% `tuncer:owner/2').
-spec owner(fd(), non_neg_integer() | string() | binary()) -> ok | {error, posix()}.
owner(FD, Owner) ->
    tunctl_registry:with_device(FD, fun(Dev) -> tuncer:owner(Dev, Owner) end).

%% @doc Set the group owning the interface: a gid or a group name (as
%% `tuncer:group/2').
-spec group(fd(), non_neg_integer() | string() | binary()) -> ok | {error, posix()}.
group(FD, Group) ->
    tunctl_registry:with_device(FD, fun(Dev) -> tuncer:group(Dev, Group) end).

%% @doc Filter the packets read from the device (as `tuncer:filter/2').
-spec filter(fd(), [tuncer:rule()]) -> ok | {error, posix()}.
filter(FD, Rules) ->
    tunctl_registry:with_device(FD, fun(Dev) -> tuncer:filter(Dev, Rules) end).

%% @doc The port's counters for the device (as `tuncer:stats/1').
-spec stats(fd()) -> {ok, tuncer:stats()} | {error, posix()}.
stats(FD) ->
    tunctl_registry:with_device(FD, fun tuncer:stats/1).

%% @doc Assign an address to the named device and bring it up, with the
%% original's default prefix: `/24' for IPv4, `/64' for IPv6.
%%
%% ```
%% 1> tunctl:up(<<"tap3">>, {198,18,0,1}).
%% ok
%% '''
-spec up(iodata(), tuncer:ip()) -> ok | {error, posix()}.
up(Device, IP) ->
    by_name(Device, fun(Dev) ->
        case tunctl_opts:address(IP) of
            {ok, <<_:32>>} -> tuncer:up(Dev, IP, 24);
            {ok, <<_:128>>} -> tuncer:up(Dev, IP, 64);
            {error, _} = Error -> Error
        end
    end).

%% @doc Assign an address with a prefix length or netmask to the named
%% device and bring it up (as `tuncer:up/3').
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

%% @doc The MTU of the named device.
-spec mtu(iodata()) -> pos_integer() | {error, posix()}.
mtu(Device) ->
    by_name(Device, fun tuncer:mtu/1).

%% @doc Set the MTU of the named device.
-spec mtu(iodata(), integer()) -> ok | {error, posix()}.
mtu(Device, MTU) ->
    by_name(Device, fun(Dev) -> tuncer:mtu(Dev, MTU) end).

%% @doc Decode the packet information header of a packet read from a
%% device created without `no_pi', in the original's shape
%% `{tun_pi, Flags, Proto, Payload}'. `Proto' is the EtherType (the
%% original decoded it in host byte order, which is byte-swapped on
%% little-endian machines). `tuncer:header/1,2' also decode the
%% virtio-net header.
%%
%% ```
%% 1> tunctl:header(Packet).
%% {tun_pi,0,34525,<<96,0,...>>}
%% '''
-spec header(binary()) -> {tun_pi, 0..65535, 0..65535, binary()} | {error, einval}.
header(Packet) ->
    case tuncer:header(Packet) of
        {ok, #{flags := Flags, proto := Proto}, Payload} -> {tun_pi, Flags, Proto, Payload};
        {error, _} = Error -> Error
    end.


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
