%% @private
%% @doc The address operations of `tuncer' (`up/2,3', `addr_add/2,3',
%% `addr_del/2,3', `dstaddr/2', `broadcast/2'), in port commands. The
%% kernel is the only record of a device's addresses: what needs the
%% current addresses asks the port (`addr_list'), nothing is remembered
%% here. `Call' runs one port command on the device and returns its
%% answer.
-module(tunctl_addrs).

-export([up/2, up/3, add/2, add/3, del/2, del/3, dstaddr/2, broadcast/2]).

-type call() :: fun((tuple()) -> term()).
-type result() :: ok | {error, atom()}.

%% @doc Set the primary address (`addr_set': IPv4 `/32', IPv6 `/64') and
%% bring the link up.
-spec up(call(), tuncer:ip()) -> result().
up(Call, IP) ->
    case tunctl_opts:address(IP) of
        {ok, Addr} -> link_up(Call, {addr_set, Addr, default_prefix(Addr)});
        {error, _} = Error -> Error
    end.

%% @doc Set the primary address with a prefix length or netmask and bring
%% the link up.
-spec up(call(), tuncer:ip(), tuncer:mask()) -> result().
up(Call, IP, Mask) ->
    case tunctl_opts:address(IP, Mask) of
        {ok, Addr, Len} -> link_up(Call, {addr_set, Addr, Len});
        {error, _} = Error -> Error
    end.

%% @doc Add an address (IPv4 `/32' with broadcast `x.x.x.255', IPv6
%% `/64') and bring the link up.
-spec add(call(), tuncer:ip()) -> result().
add(Call, IP) ->
    case tunctl_opts:address(IP) of
        {ok, Addr} -> link_up(Call, tunctl_opts:addr_add(Addr, default));
        {error, _} = Error -> Error
    end.

%% @doc Add an address with a prefix length or netmask and bring the link
%% up.
-spec add(call(), tuncer:ip(), tuncer:mask()) -> result().
add(Call, IP, Mask) ->
    case tunctl_opts:address(IP, Mask) of
        {ok, Addr, Len} -> link_up(Call, tunctl_opts:addr_add(Addr, Len));
        {error, _} = Error -> Error
    end.

%% @doc Remove an address with the prefix the kernel has for it.
-spec del(call(), tuncer:ip()) -> result().
del(Call, IP) ->
    with_addrs(Call, IP, fun(Addr, Addrs) ->
        case [Len || {A, Len, _} <- Addrs, A =:= Addr] of
            [Len | _] -> Call({addr_del, Addr, Len});
            [] -> {error, eaddrnotavail}
        end
    end).

%% @doc Remove an address with this prefix length or netmask.
-spec del(call(), tuncer:ip(), tuncer:mask()) -> result().
del(Call, IP, Mask) ->
    case tunctl_opts:address(IP, Mask) of
        {ok, Addr, Len} -> Call({addr_del, Addr, Len});
        {error, _} = Error -> Error
    end.

%% @doc The point-to-point peer: IPv4 on the primary address
%% (`SIOCSIFDSTADDR', as msantos/tunctl 1.0); IPv6 on the newest global
%% address, replaced by the same address as `/128' with the peer.
-spec dstaddr(call(), tuncer:ip()) -> result().
dstaddr(Call, IP) ->
    with_addrs(Call, IP, fun
        (<<_:32>> = Peer, _) ->
            Call({dstaddr, Peer});
        (Peer, Addrs) ->
            case [{A, Len} || {<<_:128>> = A, Len, _} <- Addrs, not link_local(A)] of
                [{Addr, Len} | _] -> then(Call({addr_del, Addr, Len}), fun() -> Call(tunctl_opts:addr_peer(Addr, Peer)) end);
                [] -> {error, eaddrnotavail}
            end
    end).

%% @doc The broadcast address of the primary IPv4 address
%% (`SIOCSIFBRDADDR', as msantos/tunctl 1.0); IPv6 has none (`einval').
-spec broadcast(call(), tuncer:ip()) -> result().
broadcast(Call, IP) ->
    case tunctl_opts:address(IP) of
        {ok, <<_:32>> = Brd} -> Call({broadcast, Brd});
        {ok, _} -> {error, einval};
        {error, _} = Error -> Error
    end.

default_prefix(<<_:32>>) -> 32;
default_prefix(<<_:128>>) -> 64.

link_up(Call, Cmd) ->
    then(Call(Cmd), fun() -> Call({link_set, [{up, true}]}) end).

then(ok, Next) -> Next();
then(Error, _Next) -> Error.

% Fun(Addr, Addrs): the address IP, and the interface's addresses (the
% kernel's, asked now).
with_addrs(Call, IP, Fun) ->
    case tunctl_opts:address(IP) of
        {ok, Addr} ->
            case Call({addr_list}) of
                {ok, Addrs} -> Fun(Addr, Addrs);
                {error, _} = Error -> Error
            end;
        {error, _} = Error ->
            Error
    end.

link_local(<<16#3fa:10, _:118>>) -> true;
link_local(_) -> false.
