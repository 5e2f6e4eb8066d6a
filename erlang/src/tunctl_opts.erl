%% @private
%% @doc The pure side of `tuncer': parsing and validation that needs no
%% process, no port and no device.
%%
%% This module owns
%% <ul>
%% <li>the options of `tuncer:create/2': device flags and their defaults,
%%     `{active, A}', and the configuration options turned into the steps
%%     the device process sends to the port (`create_args/2');</li>
%% <li>IP addresses, prefix lengths and netmasks (`address/1,2'), and the
%%     `addr_add' commands built from them (`addr_add/2', `addr_peer/2');</li>
%% <li>filter rules (`is_rule/1') and active modes (`is_active/1');</li>
%% <li>user and group names looked up in `/etc/passwd' and `/etc/group'
%%     (`uid/1', `gid/1');</li>
%% <li>the headers the kernel puts in front of packets (`header/2', behind
%%     `tuncer:header/1,2'), and the size of a packet to send
%%     (`packet_size/1').</li>
%% </ul>
%% Users call `tuncer' and `tunctl'; the types are `tuncer''s.
-module(tunctl_opts).

-export([
    create_args/2,
    is_active/1,
    is_deliver/1,
    is_offload/1,
    is_rule/1,
    address/1, address/2,
    addr_add/2,
    addr_peer/2,
    uid/1, gid/1,
    header/2,
    packet_size/1,
    frame_check/3
]).

-include("tunctl_proto.hrl").

%% {port_options, _} of create/2, as msantos/tunctl 1.0: the default
%% disables both busy limits.
-define(DEFAULT_PORT_OPTIONS, [{busy_limits_port, disabled}, {busy_limits_msgq, disabled}]).

%% struct tun_pi, the kernel's default struct virtio_net_hdr, ETH_HLEN
-define(PI_LEN, 4).
-define(VNET_LEN, 10).
-define(ETH_HLEN, 14).

-define(IS_ACTIVE(A),
    (is_boolean(A) orelse A =:= once orelse
        (is_integer(A) andalso A >= -32768 andalso A =< 32767))
).

% A configuration step, a port command without its Ref.
-type step() :: tuple().
% An IP address as its 4 or 16 bytes.
-type addr() :: <<_:32>> | <<_:128>>.
-type create_args() :: {
    Ifname :: binary(),
    Flags :: [tuncer:option()],
    Active :: tuncer:active(),
    Deliver :: packet | batch,
    Netns :: binary() | undefined,
    Steps :: [step()],
    PortOpts :: tuncer:port_options()
}.

-export_type([step/0, addr/0, create_args/0]).

%%--------------------------------------------------------------------
%%% API
%%--------------------------------------------------------------------

%% @doc The arguments of a new device process: the interface name, the
%% device flags, the active mode, the delivery mode, the network namespace
%% to enter and the configuration steps to run after open (filter,
%% offloads, MTU, link up, address; or address, link down), as
%% `tuncer:create/2' describes them.
%%
%% A name that is not iodata or of 16 bytes or more, or options that are
%% not a list, return `{error, badargs}' (as msantos/tunctl 1.0); a known
%% option with a malformed value raises `badarg'; unknown options are
%% ignored (as 1.0); an invalid value returns `{error, einval}'.
-spec create_args(term(), term()) -> {ok, create_args()} | {error, einval | badargs}.
create_args(Name, Options) when is_list(Options) ->
    case ifname(Name) of
        Ifname when is_binary(Ifname), byte_size(Ifname) =< ?TUNCTL_MAX_NAME_LEN ->
            {Flags, Active, Config} = options(Options),
            case config(Config) of
                {ok, Netns, Steps} ->
                    PortOpts = maps:get(port_options, Config, ?DEFAULT_PORT_OPTIONS),
                    {ok, {Ifname, Flags, Active, maps:get(deliver, Config, packet), Netns, Steps, PortOpts}};
                {error, _} = Error ->
                    Error
            end;
        _ ->
            {error, badargs}
    end;
create_args(_Name, _Options) ->
    {error, badargs}.

%% @doc Whether a term is an active mode: `true', `false', `once' or a
%% counter increment in -32768..32767.
-spec is_active(term()) -> boolean().
is_active(A) ->
    ?IS_ACTIVE(A).

%% @doc Whether a term is a delivery mode (`{deliver, Mode}').
-spec is_deliver(term()) -> boolean().
is_deliver(Mode) ->
    Mode =:= packet orelse Mode =:= batch.

%% @doc Whether a term is a list of offloads (`{offload, Offloads}').
-spec is_offload(term()) -> boolean().
is_offload(Offloads) when is_list(Offloads) ->
    lists:all(fun(O) -> lists:member(O, [csum, tso4, tso6, tso_ecn, uso4, uso6]) end, Offloads);
is_offload(_) ->
    false.

%% @doc Whether a term is a filter rule (`tuncer:filter/2').
-spec is_rule(term()) -> boolean().
is_rule(Rule) when is_atom(Rule) -> lists:member(Rule, ?TUNCTL_FILTER_RULES);
is_rule({ethertype, N}) when is_integer(N), N >= 0, N =< ?TUNCTL_MAX_ETHERTYPE -> true;
is_rule({ip_proto, N}) when is_integer(N), N >= 0, N =< ?TUNCTL_MAX_IP_PROTO -> true;
is_rule(_) -> false.

%% @doc An IP address (a tuple, a string, or a binary: text or the 4 or 16
%% bytes) as its 4 or 16 bytes. A string, binary or tuple that is not an
%% address returns `{error, einval}'; a term that cannot be one (an atom, a
%% number) raises `badarg'.
-spec address(tuncer:ip()) -> {ok, addr()} | {error, einval}.
address(IP) ->
    einval(fun() -> {ok, ip(IP)} end).

%% @doc An IP address (as `address/1') and the prefix length given by
%% `Mask': a prefix length, or a contiguous netmask of the same family.
%% A prefix out of range or a bad netmask returns `{error, einval}'.
-spec address(tuncer:ip(), tuncer:mask()) -> {ok, addr(), 0..128} | {error, einval}.
address(IP, Mask) ->
    einval(fun() ->
        Addr = ip(IP),
        {ok, Addr, prefix(Addr, Mask)}
    end).

%% @doc The `addr_add' step for an address and a prefix length. IPv4
%% addresses get the broadcast address of their network; `default' is
%% IPv4 `/32' with the broadcast address `x.x.x.255' (as msantos/tunctl),
%% IPv6 `/64'.
-spec addr_add(addr(), 0..128 | default) -> step().
addr_add(Addr, Len) ->
    addr_cmd(Addr, Len, undefined).

%% @doc The `addr_add' step for an address with a point-to-point peer of
%% the same family: the address is `/32' or `/128'.
-spec addr_peer(addr(), addr()) -> step().
addr_peer(Addr, Peer) when bit_size(Addr) =:= bit_size(Peer) ->
    addr_cmd(Addr, default, Peer).

%% @doc The uid of a user name in `/etc/passwd': `{error, einval}' when
%% there is none.
-spec uid(string() | binary()) -> {ok, integer()} | {error, file:posix() | badarg | terminated | system_limit}.
uid(User) ->
    lookup_id("/etc/passwd", User).

%% @doc The gid of a group name in `/etc/group': `{error, einval}' when
%% there is none.
-spec gid(string() | binary()) -> {ok, integer()} | {error, file:posix() | badarg | terminated | system_limit}.
gid(Group) ->
    lookup_id("/etc/group", Group).

%% @doc Decode the headers in front of a packet of a device with these
%% flags (the integer of `tuncer:flags/1' or the option list), as
%% `tuncer:header/2' describes.
-spec header(binary(), non_neg_integer() | [tuncer:option()]) ->
    {ok, tuncer:header(), binary()} | {error, einval}.
header(Packet, Flags) when is_integer(Flags) ->
    header(Packet, Flags band ?TUNCTL_IFF_NO_PI =:= 0, Flags band ?TUNCTL_IFF_VNET_HDR =/= 0);
header(Packet, Options) when is_list(Options) ->
    header(Packet, not lists:member(no_pi, Options), lists:member(vnet_hdr, Options)).

%% @doc The size of a packet to send (`tuncer:send/2'); data that is not
%% iodata raises `badarg'.
-spec packet_size(iodata()) -> non_neg_integer().
packet_size(Data) ->
    iodata(fun erlang:iolist_size/1, Data).

%% @doc What the kernel would refuse before writing a packet of `Size'
%% bytes to a device with these flags (`tuncer:send/2'): `einval' for a
%% packet shorter than its headers (packet information, virtio-net
%% header), a TAP frame shorter than an Ethernet header, a TUN `no_pi'
%% packet whose version nibble is not 4 or 6; else `ok'.
-spec frame_check(non_neg_integer(), non_neg_integer(), iodata()) -> ok | einval.
frame_check(Flags, Size, Data) ->
    PI = Flags band ?TUNCTL_IFF_NO_PI =:= 0,
    Hdr = bool(PI) * ?PI_LEN + bool(Flags band ?TUNCTL_IFF_VNET_HDR =/= 0) * ?VNET_LEN,
    Tap = Flags band ?TUNCTL_IFF_TAP =/= 0,
    if
        Size < Hdr -> einval;
        Tap, Size - Hdr < ?ETH_HLEN -> einval;
        Tap; PI -> ok;
        Size =:= Hdr -> einval;
        true -> ip_version(byte_at(Hdr, Data))
    end.

bool(true) -> 1;
bool(false) -> 0.

ip_version(B) when B bsr 4 =:= 4; B bsr 4 =:= 6 -> ok;
ip_version(_) -> einval.

% The byte at offset N of iodata at least N + 1 bytes long.
byte_at(N, Bin) when is_binary(Bin) ->
    binary:at(Bin, N);
byte_at(N, [H | T]) when is_integer(H) ->
    case N of
        0 -> H;
        _ -> byte_at(N - 1, T)
    end;
byte_at(N, [H | T]) ->
    case iolist_size(H) of
        Len when N < Len -> byte_at(N, H);
        Len -> byte_at(N - Len, T)
    end.

%%--------------------------------------------------------------------
%%% Create options
%%--------------------------------------------------------------------

% The name as a binary; undefined when it is not iodata.
ifname(Name) ->
    try
        iolist_to_binary(Name)
    catch
        error:badarg -> undefined
    end.

% Fun(Data), raising a plain badarg when Data is not iodata.
iodata(Fun, Data) ->
    try
        Fun(Data)
    catch
        error:badarg -> erlang:error(badarg)
    end.

% {Flags, Active, Config}: device flags, active mode, and the configuration
% options as a map. Malformed options raise badarg.
options(Options) ->
    {Flags, Active, Config} = lists:foldl(fun option/2, {[], false, #{}}, Options),
    case Flags of
        [] -> {[no_pi, tap], Active, Config};
        _ -> {tun_or_tap(lists:usort(Flags)), Active, Config}
    end.

tun_or_tap(Flags) ->
    case lists:member(tun, Flags) orelse lists:member(tap, Flags) of
        true -> Flags;
        false -> lists:usort([tap | Flags])
    end.

option(Flag, {Flags, Active, Config} = Acc) when is_atom(Flag) ->
    % an unknown flag is ignored, as msantos/tunctl 1.0 did
    case lists:member(Flag, ?TUNCTL_DEVICE_FLAGS) of
        true -> {[Flag | Flags], Active, Config};
        false -> Acc
    end;
option({active, A}, {Flags, _, Config}) when ?IS_ACTIVE(A) ->
    {Flags, A, Config};
option({Key, IP} = Opt, Acc) when Key =:= addr; Key =:= dstaddr; Key =:= netmask ->
    _ = is_ip_term(IP) orelse erlang:error(badarg, [Opt]),
    config(Key, IP, Acc);
option({prefixlen, N}, Acc) when is_integer(N) ->
    config(prefixlen, N, Acc);
option({mtu, N}, Acc) when is_integer(N) ->
    config(mtu, N, Acc);
option({up, B}, Acc) when is_boolean(B) ->
    config(up, B, Acc);
option({namespace, Path}, Acc) when is_list(Path); is_binary(Path) ->
    config(namespace, Path, Acc);
option({deliver, Mode} = Opt, Acc) ->
    _ = is_deliver(Mode) orelse erlang:error(badarg, [Opt]),
    config(deliver, Mode, Acc);
option({offload, Offloads} = Opt, Acc) ->
    _ = is_offload(Offloads) orelse erlang:error(badarg, [Opt]),
    config(offload, Offloads, Acc);
option({filter, Rules} = Opt, Acc) when is_list(Rules) ->
    _ = lists:all(fun is_rule/1, Rules) orelse erlang:error(badarg, [Opt]),
    config(filter, Rules, Acc);
option({port_options, PortOpts} = Opt, Acc) when is_list(PortOpts) ->
    _ = lists:all(fun is_port_option/1, PortOpts) orelse erlang:error(badarg, [Opt]),
    config(port_options, PortOpts, Acc);
option({Key, _} = Opt, _) when
    Key =:= active; Key =:= prefixlen; Key =:= mtu; Key =:= up; Key =:= namespace; Key =:= filter;
    Key =:= port_options
->
    erlang:error(badarg, [Opt]);
% Anything else is ignored, as msantos/tunctl 1.0 did.
option(_, Acc) ->
    Acc.

is_port_option({parallelism, B}) -> is_boolean(B);
is_port_option({Busy, disabled}) when Busy =:= busy_limits_port; Busy =:= busy_limits_msgq -> true;
is_port_option({Busy, {Low, High}}) when Busy =:= busy_limits_port; Busy =:= busy_limits_msgq ->
    is_integer(Low) andalso is_integer(High) andalso 0 =< Low andalso Low =< High;
is_port_option(_) -> false.

config(Key, Value, {Flags, Active, Config}) ->
    {Flags, Active, Config#{Key => Value}}.

is_ip_term(IP) ->
    is_list(IP) orelse is_binary(IP) orelse
        (is_tuple(IP) andalso (tuple_size(IP) =:= 4 orelse tuple_size(IP) =:= 8)).

% The configuration options as the namespace to enter and the steps to run
% after open: filter, offloads, MTU, link up, address (or address, link
% down).
config(Config) ->
    try
        Addr = addr_steps(Config),
        % Up before the address: the kernel adds the route to an IPv6
        % peer only when the address is added on a link that is up.
        Link =
            case maps:get(up, Config, Addr =/= []) of
                true -> [{link_set, [{up, true}]}] ++ Addr;
                false when is_map_key(up, Config) -> Addr ++ [{link_set, [{up, false}]}];
                false -> Addr
            end,
        Steps =
            [{filter, Rules} || #{filter := Rules} <- [Config]] ++
                [{offload, Offloads} || #{offload := Offloads} <- [Config]] ++
                [{link_set, [{mtu, N}]} || #{mtu := N} <- [Config]] ++
                Link,
        {ok, namespace(Config), Steps}
    catch
        throw:einval -> {error, einval}
    end.

namespace(#{namespace := Path}) ->
    case unicode:characters_to_binary(Path) of
        Bin when is_binary(Bin), byte_size(Bin) > 0 -> Bin;
        _ -> throw(einval)
    end;
namespace(_) ->
    undefined.

addr_steps(#{addr := IP} = Config) ->
    Addr = ip(IP),
    Len =
        case Config of
            #{netmask := _, prefixlen := _} -> throw(einval);
            #{netmask := Mask} -> prefix(Addr, Mask);
            #{prefixlen := N} -> prefix(Addr, N);
            _ -> default
        end,
    Peer =
        case Config of
            #{dstaddr := D} -> ip(D);
            _ -> undefined
        end,
    [addr_cmd(Addr, Len, Peer)];
addr_steps(Config) ->
    case lists:any(fun(K) -> is_map_key(K, Config) end, [netmask, prefixlen, dstaddr]) of
        true -> throw(einval);
        false -> []
    end.

%%--------------------------------------------------------------------
%%% Addresses
%%--------------------------------------------------------------------

% Invalid values throw einval, returned as {error, einval}.
einval(Fun) ->
    try
        Fun()
    catch
        throw:einval -> {error, einval}
    end.

% The addr_add command for an address, a prefix length (default: IPv4 /32
% with broadcast x.x.x.255, IPv6 /64) and a peer.
addr_cmd(<<A, B, C, _>> = Addr, default, undefined) ->
    {addr_add, Addr, 32, [{broadcast, <<A, B, C, 255>>}]};
addr_cmd(<<_:128>> = Addr, default, undefined) ->
    {addr_add, Addr, 64, []};
addr_cmd(Addr, Len, undefined) ->
    {addr_add, Addr, Len, broadcast_opt(Addr, Len)};
addr_cmd(Addr, _, Peer) when bit_size(Addr) =:= bit_size(Peer) ->
    {addr_add, Addr, bit_size(Addr), [{peer, Peer}]};
addr_cmd(_, _, _) ->
    throw(einval).

% A prefix length, or a netmask of the same family as the address.
prefix(Addr, Len) when is_integer(Len) ->
    case Len >= 0 andalso Len =< bit_size(Addr) of
        true -> Len;
        false -> throw(einval)
    end;
prefix(Addr, Mask) ->
    case ip(Mask) of
        M when bit_size(M) =:= bit_size(Addr) ->
            Bits = bit_size(M),
            N = binary:decode_unsigned(M),
            Len = Bits - ones(bnot N band ((1 bsl Bits) - 1), 0),
            case ((1 bsl Len) - 1) bsl (Bits - Len) of
                N -> Len;
                _ -> throw(einval)
            end;
        _ ->
            throw(einval)
    end.

% The number of significant bits of a host mask (0...01...1).
ones(0, N) -> N;
ones(M, N) -> ones(M bsr 1, N + 1).

% An IP address as a 4 or 16 byte binary. A string or tuple that is not an
% address throws einval; a term that cannot be one raises badarg.
ip({_, _, _, _} = IP) ->
    ip_bin(IP);
ip({_, _, _, _, _, _, _, _} = IP) ->
    ip_bin(IP);
ip(IP) when is_list(IP) ->
    case catch inet:parse_strict_address(IP) of
        {ok, Addr} -> ip_bin(Addr);
        _ -> throw(einval)
    end;
ip(IP) when is_binary(IP) ->
    case catch inet:parse_strict_address(binary_to_list(IP)) of
        {ok, Addr} -> ip_bin(Addr);
        _ when byte_size(IP) =:= 4; byte_size(IP) =:= 16 -> IP;
        _ -> throw(einval)
    end;
ip(_) ->
    erlang:error(badarg).

ip_bin({A, B, C, D} = IP) ->
    case inet:is_ipv4_address(IP) of
        true -> <<A, B, C, D>>;
        false -> throw(einval)
    end;
ip_bin({A, B, C, D, E, F, G, H} = IP) ->
    case inet:is_ipv6_address(IP) of
        true -> <<A:16, B:16, C:16, D:16, E:16, F:16, G:16, H:16>>;
        false -> throw(einval)
    end.

broadcast_opt(<<Addr:32>>, Len) when Len < 31 ->
    Mask = (1 bsl (32 - Len)) - 1,
    [{broadcast, <<(Addr bor Mask):32>>}];
broadcast_opt(_, _) ->
    [].

%%--------------------------------------------------------------------
%%% Owner and group names
%%--------------------------------------------------------------------

% The uid or gid of a name in /etc/passwd or /etc/group.
lookup_id(File, Name) ->
    Bin = unicode:characters_to_binary(Name),
    case file:read_file(File) of
        {ok, Data} ->
            Ids = [
                Id
             || Line <- binary:split(Data, <<"\n">>, [global]),
                [N, _, Id | _] <- [binary:split(Line, <<":">>, [global])],
                N =:= Bin
            ],
            case Ids of
                [Id | _] ->
                    try
                        {ok, binary_to_integer(Id)}
                    catch
                        error:badarg -> {error, einval}
                    end;
                [] ->
                    {error, einval}
            end;
        {error, _} = Error ->
            Error
    end.

%%--------------------------------------------------------------------
%%% Packet headers
%%--------------------------------------------------------------------

header(Packet, PI, Vnet) ->
    case header_pi(PI, Packet) of
        {ok, Header, Rest} -> header_vnet(Vnet, Rest, Header);
        error -> {error, einval}
    end.

header_pi(true, <<Flags:16/native, Proto:16, Rest/binary>>) -> {ok, #{flags => Flags, proto => Proto}, Rest};
header_pi(true, _) -> error;
header_pi(false, Packet) -> {ok, #{}, Packet}.

header_vnet(true, <<F, Gso, HdrLen:16/native, GsoSize:16/native, Start:16/native, Offset:16/native, Rest/binary>>, H) ->
    Vnet = #{
        flags => F,
        gso_type => Gso,
        hdr_len => HdrLen,
        gso_size => GsoSize,
        csum_start => Start,
        csum_offset => Offset
    },
    {ok, H#{vnet => Vnet}, Rest};
header_vnet(true, _, _) ->
    {error, einval};
header_vnet(false, Packet, H) ->
    {ok, H, Packet}.
