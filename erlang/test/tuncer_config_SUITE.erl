%% Device configuration (issue 4): addresses, point-to-point, MTU, create
%% options, persistence and ownership, headers, multi-queue, namespaces,
%% policy, filters and counters, the tunctl module, and exact errors.
%% Every check reads the kernel's state back with `ip -o' / `ip -d'.
%%
%% Needs CAP_NET_ADMIN and a private network namespace (make ct runs it
%% through scripts/in-netns); refuses to run anywhere else.
%% Addresses: 198.18.0.0/15 and 2001:db8::/32 only.
-module(tuncer_config_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1, end_per_testcase/2]).
-export([
    addresses/1,
    point_to_point/1,
    create_options/1,
    create_atomic/1,
    errors/1,
    owner_group_names/1,
    persist_reattach/1,
    header_pi/1,
    header_vnet/1,
    multi_queue/1,
    ipv6_ping/1,
    filter_stats/1,
    namespace/1,
    policy/1,
    tunctl_module/1
]).

-import(tunctl_test_lib, [ip/1, exists/1, to_string/1]).
-import(tunctl_test_lib, [udp_setup/3, recv_until/2, is_udp_to/2, parse_udp/1, reflect/1]).

-include_lib("tunctl/include/tunctl_proto.hrl").

suite() ->
    [{timetrap, {seconds, 60}}].

all() ->
    [
        addresses,
        point_to_point,
        create_options,
        create_atomic,
        errors,
        owner_group_names,
        persist_reattach,
        header_pi,
        header_vnet,
        multi_queue,
        ipv6_ping,
        filter_stats,
        namespace,
        policy,
        tunctl_module
    ].

init_per_suite(Config) ->
    case tunctl_test_lib:init_suite(Config) of
        {skip, _} = Skip ->
            Skip;
        Config1 ->
            % No duplicate address detection in this namespace:
            % IPv6 addresses are usable at once.
            ok = sysctl("net/ipv6/conf/all/accept_dad", "0"),
            ok = sysctl("net/ipv6/conf/default/accept_dad", "0"),
            [{program, tunctl_test_lib:port_program()} | Config1]
    end.

end_per_suite(_Config) ->
    ok.

end_per_testcase(_Case, _Config) ->
    ok = application:unset_env(tunctl, policy),
    ok = application:unset_env(tunctl, port_program).

%%--------------------------------------------------------------------
%%% Tests
%%--------------------------------------------------------------------

% up/2 (the primary address; compat_SUITE has the rest), addr_add/2,3
% with every address form, prefix lengths and netmasks, several
% addresses, addr_del/2,3.
addresses(_Config) ->
    {ok, Dev} = tuncer:create(<<"cc-addr0">>, [tun, no_pi]),
    ok = tuncer:up(Dev, "198.18.20.1"),
    % a TUN link is point-to-point: no broadcast address (SIOCSIFADDR)
    ?assertMatch({match, _}, re:run(addrs("cc-addr0"), "inet 198.18.20.1/32 scope")),
    ?assert(is_up("cc-addr0")),
    ok = tuncer:addr_add(Dev, {198, 18, 21, 1}, 24),
    ok = tuncer:addr_add(Dev, <<"198.18.22.1">>, {255, 255, 255, 0}),
    ok = tuncer:addr_add(Dev, "198.18.23.1", "255.255.254.0"),
    ok = tuncer:addr_add(Dev, <<198, 18, 24, 1>>, <<"255.255.255.128">>),
    ok = tuncer:addr_add(Dev, "2001:db8:20::1", 64),
    ok = tuncer:addr_add(Dev, {16#2001, 16#db8, 16#21, 0, 0, 0, 0, 1}, "ffff:ffff:ffff::"),
    ok = tuncer:addr_add(Dev, <<"2001:db8:22::1">>),
    ok = tuncer:up(Dev, <<16#2001:16, 16#db8:16, 16#23:16, 0:64, 1:16>>, 128),
    Addrs = addrs("cc-addr0"),
    ct:pal("~s", [Addrs]),
    [
        ?assertMatch({match, _}, re:run(Addrs, Re))
     || Re <- [
            "inet 198.18.21.1/24 brd 198.18.21.255 ",
            "inet 198.18.22.1/24 brd 198.18.22.255 ",
            "inet 198.18.23.1/23 brd 198.18.23.255 ",
            "inet 198.18.24.1/25 brd 198.18.24.127 ",
            "inet6 2001:db8:20::1/64 ",
            "inet6 2001:db8:21::1/48 ",
            "inet6 2001:db8:22::1/64 ",
            "inet6 2001:db8:23::1/128 "
        ]
    ],
    % the same address twice: the kernel's answer to addr_add; up/3 sets it
    ?assertEqual({error, eexist}, tuncer:addr_add(Dev, {198, 18, 21, 1}, 24)),
    ok = tuncer:up(Dev, "2001:db8:23::1", 128),
    % removal: with the prefix it was assigned with, or an explicit one
    ok = tuncer:addr_del(Dev, "198.18.21.1"),
    ok = tuncer:addr_del(Dev, "198.18.22.1", 24),
    ok = tuncer:addr_del(Dev, {198, 18, 23, 1}, "255.255.254.0"),
    ok = tuncer:addr_del(Dev, "2001:db8:20::1"),
    ok = tuncer:addr_del(Dev, "2001:db8:21::1", 48),
    After = addrs("cc-addr0"),
    [?assertEqual(nomatch, re:run(After, Re)) || Re <- ["198.18.21.1", "198.18.22.1", "198.18.23.1", "2001:db8:20::1", "2001:db8:21::1"]],
    ?assertMatch({match, _}, re:run(After, "inet 198.18.24.1/25")),
    ?assertMatch({match, _}, re:run(After, "inet6 2001:db8:23::1/128")),
    % not assigned (any more)
    ?assertEqual({error, eaddrnotavail}, tuncer:addr_del(Dev, "198.18.21.1")),
    ?assertEqual({error, eaddrnotavail}, tuncer:addr_del(Dev, "198.18.21.1", 24)),
    ?assertEqual({error, eaddrnotavail}, tuncer:addr_del(Dev, "198.18.24.1", 24)),
    ok = tuncer:destroy(Dev).

% dstaddr/2 (IPv4, IPv6), broadcast/2, down/1, mtu/1,2.
point_to_point(_Config) ->
    {ok, Dev} = tuncer:create(<<"cc-p2p0">>, [tun, no_pi]),
    ?assertEqual({error, eaddrnotavail}, tuncer:dstaddr(Dev, "198.18.25.2")),
    ?assertEqual({error, eaddrnotavail}, tuncer:broadcast(Dev, "198.18.25.255")),
    ok = tuncer:up(Dev, "198.18.25.1", 24),
    ok = tuncer:broadcast(Dev, {198, 18, 25, 127}),
    ?assertMatch({match, _}, re:run(addrs("cc-p2p0"), "inet 198.18.25.1/24 brd 198.18.25.127 ")),
    % SIOCSIFDSTADDR: the peer of the primary address, its prefix kept
    ok = tuncer:dstaddr(Dev, "198.18.25.2"),
    ?assertMatch({match, _}, re:run(addrs("cc-p2p0"), "inet 198.18.25.1 peer 198.18.25.2/24 ")),
    ok = tuncer:up(Dev, "2001:db8:25::1", 64),
    ok = tuncer:dstaddr(Dev, "2001:db8:25::2"),
    ?assertMatch({match, _}, re:run(addrs("cc-p2p0"), "inet6 2001:db8:25::1 peer 2001:db8:25::2/128 ")),
    % IPv6 peers are replaced and removed like any address
    ok = tuncer:dstaddr(Dev, "2001:db8:25::3"),
    ?assertMatch({match, _}, re:run(addrs("cc-p2p0"), "inet6 2001:db8:25::1 peer 2001:db8:25::3/128 ")),
    ?assertEqual(nomatch, re:run(addrs("cc-p2p0"), "2001:db8:25::2")),
    ok = tuncer:addr_del(Dev, "2001:db8:25::1"),
    ?assertEqual(nomatch, re:run(addrs("cc-p2p0"), "2001:db8:25::1")),
    % the broadcast address is IPv4 only
    ?assertEqual({error, einval}, tuncer:broadcast(Dev, "2001:db8:25::ff")),
    % link state and MTU
    ok = tuncer:down(Dev),
    ?assertNot(is_up("cc-p2p0")),
    ?assertEqual({ok, 1500}, tuncer:mtu(Dev)),
    ?assertMatch({ok, _, <<"cc-p2p0">>}, tuncer:mtu(Dev, 1280)),
    ?assertEqual({ok, 1280}, tuncer:mtu(Dev)),
    ?assertMatch({match, _}, re:run(ip("-o link show cc-p2p0"), " mtu 1280 ")),
    ok = tuncer:destroy(Dev).

% Options of create/2, read back from the kernel.
create_options(_Config) ->
    {ok, D1} = tuncer:create(<<"cc-opt0">>, [tun, no_pi, {addr, "198.18.26.1"}, {prefixlen, 24}, {mtu, 1400}]),
    ?assertMatch({match, _}, re:run(addrs("cc-opt0"), "inet 198.18.26.1/24 brd 198.18.26.255 ")),
    ?assertMatch({match, _}, re:run(ip("-o link show cc-opt0"), " mtu 1400 ")),
    ?assert(is_up("cc-opt0")),
    % addresses set at creation are known to addr_del/2 and dstaddr/2
    ok = tuncer:dstaddr(D1, "198.18.26.2"),
    ?assertMatch({match, _}, re:run(addrs("cc-opt0"), "inet 198.18.26.1 peer 198.18.26.2/24 ")),
    ok = tuncer:destroy(D1),

    {ok, D2} = tuncer:create(<<"cc-opt1">>, [
        tun, {addr, <<"2001:db8:26::1">>}, {netmask, "ffff:ffff:ffff:ffff::"}, {dstaddr, "2001:db8:26::2"}, {up, false}
    ]),
    ?assertMatch({match, _}, re:run(addrs("cc-opt1"), "inet6 2001:db8:26::1 peer 2001:db8:26::2/128 ")),
    ?assertNot(is_up("cc-opt1")),
    % only tun given: no_pi is not added
    ?assertEqual(0, tuncer:flags(D2) band ?TUNCTL_IFF_NO_PI),
    ok = tuncer:destroy(D2),

    % no flag given: [tap, no_pi]; {up, true} alone; netmask as a tuple
    {ok, D3} = tuncer:create(<<"cc-opt2">>, [{up, true}, {active, true}]),
    ?assert(is_up("cc-opt2")),
    ?assertMatch({match, _}, re:run(ip("-d link show cc-opt2"), "tun type tap pi off")),
    ok = tuncer:destroy(D3),
    {ok, D4} = tuncer:create("cc-opt3", [tun, no_pi, {addr, {198, 18, 27, 1}}, {netmask, {255, 255, 255, 252}}]),
    ?assertMatch({match, _}, re:run(addrs("cc-opt3"), "inet 198.18.27.1/30 brd 198.18.27.3 ")),
    ok = tuncer:destroy(D4),

    % malformed options raise badarg, invalid values return einval
    ?assertError(badarg, tuncer:create(<<"cc-opt4">>, [tun, {addr, foo}])),
    ?assertError(badarg, tuncer:create(<<"cc-opt4">>, [tun, {mtu, "1500"}])),
    ?assertError(badarg, tuncer:create(<<"cc-opt4">>, [tun, {up, yes}])),
    ?assertError(badarg, tuncer:create(<<"cc-opt4">>, [tun, {filter, [bogus]}])),
    ?assertError(badarg, tuncer:create(<<"cc-opt4">>, [tun, {namespace, 42}])),
    ?assertEqual({error, einval}, tuncer:create(<<"cc-opt4">>, [tun, {addr, "198.18.300.1"}])),
    ?assertEqual({error, einval}, tuncer:create(<<"cc-opt4">>, [tun, {dstaddr, "198.18.27.2"}])),
    ?assertEqual({error, einval}, tuncer:create(<<"cc-opt4">>, [tun, {prefixlen, 24}])),
    ?assertEqual({error, einval}, tuncer:create(<<"cc-opt4">>, [tun, {addr, "198.18.27.1"}, {prefixlen, 33}])),
    ?assertEqual(
        {error, einval}, tuncer:create(<<"cc-opt4">>, [tun, {addr, "198.18.27.1"}, {prefixlen, 24}, {netmask, "255.255.255.0"}])
    ),
    ?assertEqual({error, einval}, tuncer:create(<<"cc-opt4">>, [tun, {addr, "198.18.27.1"}, {netmask, "255.0.255.0"}])),
    ?assertEqual({error, einval}, tuncer:create(<<"cc-opt4">>, [tun, {addr, "198.18.27.1"}, {dstaddr, "2001:db8::2"}])),
    ?assertNot(exists("cc-opt4")).

% A failing step removes the device: nothing half-created is left.
create_atomic(_Config) ->
    Before = links(),
    % the kernel refuses the MTU (tun's maximum is 65535)
    ?assertEqual({error, einval}, tuncer:create(<<"cc-atom0">>, [tun, {addr, "198.18.28.1"}, {mtu, 70000}])),
    % the port refuses it
    ?assertEqual({error, einval}, tuncer:create(<<"cc-atom0">>, [tun, {mtu, -1}])),
    % the address step fails: IPv6 needs an MTU of 1280
    ?assertMatch({error, _}, tuncer:create(<<"cc-atom0">>, [tun, {mtu, 1000}, {addr, "2001:db8:28::1"}])),
    ?assertEqual({error, einval}, tuncer:create(<<"cc-atom1">>, [tun, {addr, "198.18.28.1"}, {dstaddr, "2001:db8::2"}])),
    ?assertNot(exists("cc-atom0")),
    ?assertNot(exists("cc-atom1")),
    ?assertEqual(Before, links()),
    % and the name is free
    {ok, Dev} = tuncer:create(<<"cc-atom0">>, [tun]),
    ok = tuncer:destroy(Dev).

% Errors are posix atoms and the port keeps serving.
errors(_Config) ->
    {ok, Dev} = tuncer:create(<<"cc-err0">>, [tun, no_pi]),
    % invalid values: einval, from the Erlang side or the port
    ?assertEqual({error, einval}, tuncer:up(Dev, "198.18.300.1")),
    ?assertEqual({error, einval}, tuncer:up(Dev, "not an address")),
    ?assertEqual({error, einval}, tuncer:up(Dev, {198, 18, 29, 256})),
    ?assertEqual({error, einval}, tuncer:up(Dev, {198, 18, 29, 1}, 33)),
    ?assertEqual({error, einval}, tuncer:up(Dev, "2001:db8:29::1", 129)),
    ?assertEqual({error, einval}, tuncer:up(Dev, "198.18.29.1", "255.0.255.0")),
    ?assertEqual({error, einval}, tuncer:up(Dev, "198.18.29.1", "ffff::")),
    ?assertEqual({error, einval}, tuncer:mtu(Dev, -1)),
    ?assertEqual({error, einval}, tuncer:mtu(Dev, 0)),
    ?assertEqual({error, einval}, tuncer:mtu(Dev, 65536)),
    ?assertEqual({error, einval}, tuncer:owner(Dev, "no-such-user-here")),
    ?assertEqual({error, einval}, tuncer:group(Dev, <<"no-such-group-here">>)),
    % not an address at all: badarg
    ?assertError(badarg, tuncer:up(Dev, foo)),
    ?assertError(badarg, tuncer:up(Dev, 42, 24)),
    ?assertError(badarg, tuncer:filter(Dev, [udp, bogus])),
    ?assertError(function_clause, tuncer:mtu(Dev, "1500")),
    % still serving
    ?assertEqual({ok, 1500}, tuncer:mtu(Dev)),
    ok = tuncer:up(Dev, "198.18.29.1", 24),

    % the interface is deleted behind the device's back: enodev
    "" = ip("link del cc-err0"),
    ?assertNot(exists("cc-err0")),
    ?assertEqual({error, enodev}, tuncer:up(Dev, "198.18.29.1", 24)),
    ?assertEqual({error, enodev}, tuncer:mtu(Dev)),
    ?assertEqual({error, enodev}, tuncer:mtu(Dev, 1400)),
    ?assertEqual({error, enodev}, tuncer:down(Dev)),
    ?assertEqual({error, enodev}, tuncer:addr_del(Dev, "198.18.29.1")),
    % the port still answers
    ?assertMatch({ok, #{tx_packets := 0}}, tuncer:stats(Dev)),
    ?assertEqual(<<"cc-err0">>, tuncer:devname(Dev)),
    ok = tuncer:destroy(Dev),

    % a device owned by another uid: root may attach (other users get
    % eperm: unpriv_check); tun_excl never attaches
    {ok, Owned} = tuncer:create(<<"cc-err1">>, [tap, no_pi]),
    ok = tuncer:owner(Owned, 4321),
    ok = tuncer:persist(Owned, true),
    ok = tuncer:destroy(Owned),
    {ok, Attached} = tuncer:create(<<"cc-err1">>, [tap, no_pi]),
    ok = tuncer:destroy(Attached),
    ?assertEqual({error, ebusy}, tuncer:create(<<"cc-err1">>, [tap, no_pi, tun_excl])),
    % not a TUN/TAP device: eperm too
    ?assertEqual({error, eperm}, tuncer:create(<<"lo">>, [tun])),
    "" = ip("link del cc-err1"),
    ?assertNot(exists("cc-err1")).

owner_group_names(_Config) ->
    {ok, Dev} = tuncer:create(<<"cc-own0">>, [tap, no_pi]),
    {User, Uid} = first_entry("/etc/passwd"),
    {Group, Gid} = first_entry("/etc/group"),
    ct:pal("user ~s (~b), group ~s (~b)", [User, Uid, Group, Gid]),
    ok = tuncer:owner(Dev, User),
    ok = tuncer:group(Dev, list_to_binary(Group)),
    Details = ip("-d link show cc-own0"),
    ?assertMatch({match, _}, re:run(Details, "user (" ++ User ++ "|" ++ integer_to_list(Uid) ++ ") ")),
    ?assertMatch({match, _}, re:run(Details, "group (" ++ Group ++ "|" ++ integer_to_list(Gid) ++ ") ")),
    ok = tuncer:owner(Dev, 4321),
    ok = tuncer:group(Dev, 4322),
    ?assertMatch({match, _}, re:run(ip("-d link show cc-own0"), "user 4321 group 4322")),
    ok = tuncer:destroy(Dev).

% Persistence survives the owner's exit; re-attach; removal by the test.
persist_reattach(_Config) ->
    Uid = list_to_integer(string:trim(os:cmd("id -u"))),
    Self = self(),
    {Pid, Mon} = spawn_monitor(fun() ->
        {ok, Dev} = tuncer:create(<<"cc-pers0">>, [tap, no_pi, {addr, "198.18.30.1"}, {prefixlen, 24}]),
        ok = tuncer:owner(Dev, Uid),
        ok = tuncer:persist(Dev, true),
        Self ! {created, self()},
        exit(done)
    end),
    receive
        {created, Pid} -> ok
    after 5000 -> ct:fail(create)
    end,
    receive
        {'DOWN', Mon, process, Pid, done} -> ok
    end,
    timer:sleep(200),
    ?assert(exists("cc-pers0")),
    ?assertMatch({match, _}, re:run(ip("-d link show cc-pers0"), "persist on")),
    ?assertMatch({match, _}, re:run(addrs("cc-pers0"), "inet 198.18.30.1/24")),
    % re-attach, as the owning uid
    {ok, Dev1} = tuncer:create(<<"cc-pers0">>, [tap, no_pi]),
    ?assertEqual(<<"cc-pers0">>, tuncer:devname(Dev1)),
    {ok, _, <<"cc-pers0">>} = tuncer:mtu(Dev1, 1400),
    ?assertMatch({match, _}, re:run(ip("-o link show cc-pers0"), " mtu 1400 ")),
    ok = tuncer:destroy(Dev1),
    ?assert(exists("cc-pers0")),
    % removal by the test
    "" = ip("link del cc-pers0"),
    ?assertNot(exists("cc-pers0")).

% Devices without no_pi: the 4-byte packet information header.
header_pi(_Config) ->
    {Dev, Sock} = udp_setup(<<"cc-pi0">>, 31, [tun]),
    ?assertEqual(0, tuncer:flags(Dev) band ?TUNCTL_IFF_NO_PI),
    ok = gen_udp:send(Sock, {198, 18, 31, 2}, 4242, <<"pi">>),
    Packet = recv_until(Dev, fun(P) -> {ok, _, IP} = tuncer:header(P, [tun]), is_udp_to(IP, 4242) end),
    {ok, Header, IP} = tuncer:header(Packet, [tun]),
    ct:pal("pi: ~p", [Header]),
    ?assertEqual(#{flags => 0, proto => 16#0800}, Header),
    ?assertMatch({{198, 18, 31, 1}, {198, 18, 31, 2}, _, 4242, <<"pi">>}, parse_udp(IP)),
    ?assertEqual({ok, Header, IP}, tuncer:header(Packet, tuncer:flags(Dev))),
    ?assertEqual({ok, Header, IP}, tuncer:header(Packet, [tun])),
    % msantos/tunctl 1.0's shape: host byte order
    <<ProtoIPv4:16/native>> = <<16#0800:16>>,
    ?assertEqual({tun_pi, 0, ProtoIPv4, IP}, tunctl:header(Packet)),
    ?assertEqual({tun_pi, 0, ProtoIPv4, IP}, tuncer:header(Packet)),
    ?assertEqual({ok, #{}, Packet}, tuncer:header(Packet, [tun, no_pi])),
    ?assertEqual({error, einval}, tuncer:header(<<0, 0, 8>>)),
    % writing needs the header too
    ok = tuncer:send(Dev, [<<0:16, 16#0800:16>>, reflect(IP)]),
    ?assertEqual({ok, {{198, 18, 31, 2}, 4242, <<"pi">>}}, gen_udp:recv(Sock, 0, 2000)),
    ok = tuncer:destroy(Dev),
    % TAP: the EtherType of the frame
    {ok, Tap} = tuncer:create(<<"cc-pi1">>, [tap, {active, true}]),
    ok = tuncer:up(Tap, "198.18.32.1", 24),
    {ok, S2} = gen_udp:open(0, [binary, {ip, {198, 18, 32, 1}}]),
    ok = gen_udp:send(S2, {198, 18, 32, 2}, 4242, <<"arp">>),
    Arp = active_match(Tap, fun(F) -> element(2, tuncer:header(F, [tap])) =:= #{flags => 0, proto => 16#0806} end),
    {ok, _, <<_:12/binary, 16#0806:16, _/binary>>} = tuncer:header(Arp, [tap]),
    ok = gen_udp:close(S2),
    ok = tuncer:destroy(Tap).

% vnet_hdr devices: the virtio-net header, after the packet information
% header when there is one.
header_vnet(_Config) ->
    {Dev, Sock} = udp_setup(<<"cc-vnet0">>, 33, [tun, no_pi, vnet_hdr]),
    Flags = tuncer:flags(Dev),
    ?assertEqual(?TUNCTL_IFF_VNET_HDR, Flags band ?TUNCTL_IFF_VNET_HDR),
    ok = gen_udp:send(Sock, {198, 18, 33, 2}, 4242, <<"vnet">>),
    Packet = recv_until(Dev, fun(P) -> {ok, _, IP} = tuncer:header(P, Flags), is_udp_to(IP, 4242) end),
    {ok, Header, IP} = tuncer:header(Packet, Flags),
    ct:pal("vnet: ~p", [Header]),
    ?assertMatch(#{vnet := #{flags := _, gso_type := 0, hdr_len := _, gso_size := 0, csum_start := _, csum_offset := _}}, Header),
    ?assertEqual([vnet], maps:keys(Header)),
    ?assertEqual(byte_size(Packet) - 10, byte_size(IP)),
    ?assertMatch({_, _, _, 4242, <<"vnet">>}, parse_udp(IP)),
    ?assertEqual({ok, Header, IP}, tuncer:header(Packet, [tun, no_pi, vnet_hdr])),
    ?assertEqual({error, einval}, tuncer:header(<<0:72>>, Flags)),
    ok = tuncer:destroy(Dev),

    {Dev2, Sock2} = udp_setup(<<"cc-vnet1">>, 34, [tun, vnet_hdr]),
    Flags2 = tuncer:flags(Dev2),
    ok = gen_udp:send(Sock2, {198, 18, 34, 2}, 4242, <<"both">>),
    P2 = recv_until(Dev2, fun(P) -> {ok, _, IP2} = tuncer:header(P, Flags2), is_udp_to(IP2, 4242) end),
    {ok, H2, IP2} = tuncer:header(P2, Flags2),
    ct:pal("pi + vnet: ~p", [H2]),
    ?assertMatch(#{flags := 0, proto := 16#0800, vnet := #{gso_type := 0}}, H2),
    ?assertEqual(byte_size(P2) - 14, byte_size(IP2)),
    ?assertMatch({_, _, _, 4242, <<"both">>}, parse_udp(IP2)),
    ok = tuncer:destroy(Dev2).

% One tuncer per queue; flows are spread across the queues.
multi_queue(_Config) ->
    Queues = [
        begin
            {ok, Q} = tuncer:create(<<"cc-mq0">>, [tun, no_pi, multi_queue, {active, true}]),
            Q
        end
     || _ <- lists:seq(1, 4)
    ],
    ?assertEqual([<<"cc-mq0">>], lists:usort([tuncer:devname(Q) || Q <- Queues])),
    ok = file:write_file("/proc/sys/net/ipv6/conf/cc-mq0/disable_ipv6", <<"1">>),
    [Q1 | _] = Queues,
    ok = tuncer:up(Q1, {198, 18, 35, 1}, 24),
    Flows = 64,
    Socks = [
        begin
            {ok, S} = gen_udp:open(0, [binary, {ip, {198, 18, 35, 1}}, {active, false}]),
            S
        end
     || _ <- lists:seq(1, Flows)
    ],
    [ok = gen_udp:send(S, {198, 18, 35, 2}, 5000 + N, <<N:16>>) || {N, S} <- lists:enumerate(Socks)],
    Counts = count_queues(Queues, Flows, #{}),
    ct:pal("packets per queue: ~p", [Counts]),
    ?assertEqual(Flows, lists:sum(maps:values(Counts))),
    ?assert(map_size(Counts) > 1),
    [ok = gen_udp:close(S) || S <- Socks],
    % the device stays while a queue is open
    [ok = tuncer:destroy(Q) || Q <- lists:droplast(Queues)],
    ?assert(exists("cc-mq0")),
    ok = tuncer:destroy(lists:last(Queues)),
    ?assertNot(exists("cc-mq0")).

% IPv6 end to end: ping -6 from the namespace, answered by a reflector
% owning the device.
ipv6_ping(_Config) ->
    {ok, Dev} = tuncer:create(<<"cc-ping0">>, [
        tun, no_pi, {active, true}, {addr, "2001:db8:36::1"}, {prefixlen, 64}, {mtu, 1400}
    ]),
    Out = ping_through(Dev, "2001:db8:36::2"),
    ?assertMatch({match, _}, re:run(Out, " 3 received")),
    ok = tuncer:destroy(Dev),
    % point to point
    {ok, P2P} = tuncer:create(<<"cc-ping1">>, [
        tun, no_pi, {active, true}, {addr, "2001:db8:37::1"}, {dstaddr, "2001:db8:37::2"}
    ]),
    ?assertMatch({match, _}, re:run(addrs("cc-ping1"), "inet6 2001:db8:37::1 peer 2001:db8:37::2/128")),
    % the kernel adds the route to the peer once the address is ready
    ok = tunctl_test_lib:wait(fun() -> re:run(ip("-6 route show dev cc-ping1"), "2001:db8:37::2 ") =/= nomatch end,
                              5000, no_route_to_peer),
    Out2 = ping_through(P2P, "2001:db8:37::2"),
    ?assertMatch({match, _}, re:run(Out2, " 3 received")),
    {ok, Stats} = tuncer:stats(P2P),
    ct:pal("stats: ~p", [Stats]),
    ?assertMatch(#{tx_packets := N} when N >= 3, Stats),
    ok = tuncer:destroy(P2P).

% A UDP-only filter keeps the kernel's ICMPv6 (router solicitations, MLD)
% away from the owner; the counters show them as filtered.
filter_stats(_Config) ->
    {ok, Dev} = tuncer:create(<<"cc-filt0">>, [
        tun, no_pi, {active, true}, {filter, [udp]}, {addr, "198.18.38.1"}, {prefixlen, 24}
    ]),
    ok = tuncer:up(Dev, "2001:db8:38::1", 64),
    {ok, Sock} = gen_udp:open(0, [binary, {ip, {198, 18, 38, 1}}, {active, false}]),
    % wait for the kernel's ICMPv6 to be filtered
    ok = tunctl_test_lib:wait(fun() -> filtered(Dev) > 0 end, 10000, nothing_filtered),
    % and an echo request of ours
    _ = os:cmd("ping -6 -c 1 -W 1 2001:db8:38::2"),
    [ok = gen_udp:send(Sock, {198, 18, 38, 2}, 4242, <<N>>) || N <- lists:seq(1, 5)],
    Got = [active_match(Dev, fun(_) -> true end) || _ <- lists:seq(1, 5)],
    ?assertEqual([<<N>> || N <- lists:seq(1, 5)], [element(5, parse_udp(P)) || P <- Got]),
    Rest = quiet(Dev, 300),
    ?assertEqual([], [P || {tuntap, _, P} <- Rest, not is_udp(P)]),
    {ok, S1} = tuncer:stats(Dev),
    ct:pal("stats with [udp]: ~p", [S1]),
    #{filtered := F1, rx_packets := Rx1, rx_bytes := RxB1} = S1,
    ?assert(F1 >= 1),
    ?assertEqual(5 + length(Rest), Rx1),
    ?assertEqual(lists:sum([byte_size(P) || P <- Got]), RxB1),
    % without a filter, the echo request reaches the owner
    ok = tuncer:filter(Dev, []),
    _ = os:cmd("ping -6 -c 1 -W 1 2001:db8:38::2"),
    Echo = active_match(Dev, fun(P) -> is_echo6(P) end),
    ?assertMatch(<<6:4, _/bitstring>>, Echo),
    % ICMPv6 only
    ok = tuncer:filter(Dev, [icmpv6]),
    ok = gen_udp:send(Sock, {198, 18, 38, 2}, 4242, <<"dropped">>),
    _ = os:cmd("ping -6 -c 1 -W 1 2001:db8:38::2"),
    _ = active_match(Dev, fun(P) -> is_echo6(P) end),
    ?assertEqual([], [P || {tuntap, _, P} <- quiet(Dev, 300), is_udp(P)]),
    {ok, #{filtered := F2}} = tuncer:stats(Dev),
    ?assert(F2 > F1),
    % tx counts what the owner writes
    ok = tuncer:send(Dev, reflect(hd(Got))),
    {ok, #{tx_packets := 1, tx_bytes := TxB}} = tuncer:stats(Dev),
    ?assertEqual(byte_size(hd(Got)), TxB),
    ok = gen_udp:close(Sock),
    ok = tuncer:destroy(Dev).

% {namespace, Path}: the device lives in another namespace, when the
% administrator's policy names it; without it, eacces; without
% CAP_SYS_ADMIN, eperm; never a device left behind.
namespace(Config) ->
    "" = ip("netns add cc-ns1"),
    Program = ?config(program, Config),
    try
        % The binary's administrator's policy is /etc/tunctl/policy: the
        % port runs in a mount namespace of its own with a tmpfs there.
        Policy = filename:join(?config(priv_dir, Config), "admin-policy"),
        ok = file:write_file(Policy, "allow_netns /run/netns/cc-ns1*\nallow_persist true\nallow_owner true\nallow_group true\n"),
        ok = application:set_env(tunctl, port_program, admin_wrapper(Config, "tunctl_port_admin", Policy, "")),
        {ok, Dev} = tuncer:create(<<"cc-ns0">>, [
            tun, no_pi, {namespace, "/run/netns/cc-ns1"}, {addr, "198.18.39.1"}, {prefixlen, 24}
        ]),
        ?assertNot(exists("cc-ns0")),
        InNs = os:cmd("nsenter --net=/run/netns/cc-ns1 ip -o addr show dev cc-ns0 2>&1"),
        ?assertMatch({match, _}, re:run(InNs, "inet 198.18.39.1/24")),
        {ok, _, <<"cc-ns0">>} = tuncer:mtu(Dev, 1400),
        ?assertMatch({match, _}, re:run(os:cmd("nsenter --net=/run/netns/cc-ns1 ip -o link show cc-ns0"), " mtu 1400 ")),
        ok = tuncer:destroy(Dev),
        ?assertEqual(
            nomatch, re:run(os:cmd("nsenter --net=/run/netns/cc-ns1 ip -o link show 2>&1"), "cc-ns0")
        ),
        % no such namespace; one the policy does not name
        ?assertEqual({error, enoent}, tuncer:create(<<"cc-ns0">>, [tun, {namespace, "/run/netns/cc-ns1x"}])),
        ?assertEqual({error, eacces}, tuncer:create(<<"cc-ns0">>, [tun, {namespace, "/proc/1/ns/net"}])),
        % allowed, but without CAP_SYS_ADMIN (a port started with it dropped)
        ok = application:set_env(tunctl, port_program,
            admin_wrapper(Config, "tunctl_port_nosysadmin", Policy, "setpriv --bounding-set=-sys_admin --inh-caps=-sys_admin -- ")),
        ?assertEqual({error, eperm}, tuncer:create(<<"cc-ns2">>, [tun, {namespace, "/run/netns/cc-ns1"}])),
        ?assertNot(exists("cc-ns2")),
        ?assertEqual(nomatch, re:run(os:cmd("nsenter --net=/run/netns/cc-ns1 ip -o link show"), "cc-ns2")),
        % that port still creates devices here
        {ok, Here} = tuncer:create(<<"cc-ns3">>, [tun]),
        ?assert(exists("cc-ns3")),
        ok = tuncer:destroy(Here),
        % no administrator's policy: namespaces are refused
        ok = application:set_env(tunctl, port_program, Program),
        ?assertEqual({error, eacces}, tuncer:create(<<"cc-ns4">>, [tun, {namespace, "/run/netns/cc-ns1"}])),
        ?assertNot(exists("cc-ns4"))
    after
        ok = application:unset_env(tunctl, port_program),
        _ = ip("netns del cc-ns1")
    end.

% A port program that runs the binary in a mount namespace of its own
% where /etc is a tmpfs holding Policy as /etc/tunctl/policy (the
% administrator's policy), behind Prefix (a command that execs the rest).
admin_wrapper(Config, Name, Policy, Prefix) ->
    Wrapper = filename:join(?config(priv_dir, Config), Name),
    ok = file:write_file(Wrapper, [
        "#!/bin/sh\nexec unshare --mount --propagation private -- sh -c '"
        "mount -t tmpfs tunctl-etc /etc && mkdir /etc/tunctl && cp ", Policy, " /etc/tunctl/policy && "
        "exec ", Prefix, ?config(program, Config), " \"$@\"' tunctl_port \"$@\"\n"
    ]),
    ok = file:change_mode(Wrapper, 8#755),
    Wrapper.

% {tunctl, [{policy, Path}]}: the port enforces the policy file; refusals
% are eacces and leave nothing behind.
policy(Config) ->
    Policy = filename:join(?config(priv_dir, Config), "policy"),
    ok = file:write_file(Policy, <<"name_prefix ccp\nallow_address 198.18.40.0/24\n">>),
    ok = application:set_env(tunctl, policy, Policy),
    try
        ?assertEqual({error, eacces}, tuncer:create(<<"cc-pol0">>, [tun])),
        ?assertEqual({error, eacces}, tuncer:create(<<"ccp0">>, [tun, {addr, "198.18.41.1"}, {prefixlen, 24}])),
        ?assertNot(exists("ccp0")),
        ?assertEqual({error, eacces}, tuncer:create(<<"ccp0">>, [tun, {namespace, "/proc/self/ns/net"}])),
        ?assertNot(exists("ccp0")),
        {ok, Dev} = tuncer:create(<<"ccp0">>, [tun, {addr, "198.18.40.1"}, {prefixlen, 24}]),
        ?assertMatch({match, _}, re:run(addrs("ccp0"), "inet 198.18.40.1/24")),
        ?assertEqual({error, eacces}, tuncer:up(Dev, "198.18.41.1", 24)),
        ?assertEqual({error, eacces}, tuncer:persist(Dev, true)),
        ?assertEqual({error, eacces}, tuncer:owner(Dev, 4321)),
        ?assertEqual({error, eacces}, tuncer:group(Dev, 4321)),
        ok = tuncer:up(Dev, "198.18.40.2", 24),
        ok = tuncer:destroy(Dev),
        % a kernel-named device gets the prefix
        {ok, Named} = tuncer:create(<<>>, [tun]),
        ?assertMatch(<<"ccp", _/binary>>, tuncer:devname(Named)),
        ok = tuncer:destroy(Named)
    after
        ok = application:unset_env(tunctl, policy)
    end.

% The low-level module: the original's shapes, handles and names.
tunctl_module(_Config) ->
    {ok, FD, Name} = tunctl:create(<<"cc-tunctl0">>, [tun, no_pi]),
    ?assertEqual(<<"cc-tunctl0">>, Name),
    ?assert(is_integer(FD)),
    % /32 as the original (TUN: point-to-point, no broadcast address)
    ok = tunctl:up(Name, {198, 18, 42, 1}),
    ?assertMatch({match, _}, re:run(addrs("cc-tunctl0"), "inet 198.18.42.1/32 scope")),
    ok = tunctl:up(Name, "2001:db8:42::1"),
    ?assertMatch({match, _}, re:run(addrs("cc-tunctl0"), "inet6 2001:db8:42::1/64 ")),
    % up/3 replaces the primary address
    ok = tunctl:up("cc-tunctl0", "198.18.43.1", "255.255.255.0"),
    ?assertMatch({match, _}, re:run(addrs("cc-tunctl0"), "inet 198.18.43.1/24 scope")),
    ?assertEqual(nomatch, re:run(addrs("cc-tunctl0"), "198.18.42.1")),
    ok = tunctl:addr_del(Name, "198.18.43.1"),
    ok = tunctl:up(Name, {198, 18, 42, 1}),
    ok = tunctl:addr_del(Name, "2001:db8:42::1", 64),
    ?assertEqual(nomatch, re:run(addrs("cc-tunctl0"), "198.18.43.1|2001:db8:42::1")),
    ok = tunctl:broadcast(Name, "198.18.42.127"),
    ok = tunctl:dstaddr(Name, "198.18.42.2"),
    ?assertMatch({match, _}, re:run(addrs("cc-tunctl0"), "inet 198.18.42.1 peer 198.18.42.2/32")),
    ?assertEqual({ok, FD, Name}, tunctl:mtu(Name, 1400)),
    ?assertEqual({ok, 1400}, tunctl:mtu(Name)),
    ok = tunctl:down(Name),
    ?assertNot(is_up("cc-tunctl0")),
    ok = tunctl:filter(FD, [udp]),
    ?assertMatch({ok, #{filtered := 0}}, tunctl:stats(FD)),
    ok = tunctl:owner(FD, "nobody"),
    ok = tunctl:group(FD, 4322),
    ok = tunctl:persist(FD, true),
    ?assertMatch({match, _}, re:run(ip("-d link show cc-tunctl0"), "persist on")),
    ok = tunctl:persist(FD, false),
    ?assertEqual({error, enodev}, tunctl:up(<<"cc-nope">>, {198, 18, 42, 9})),
    ?assertEqual({error, enodev}, tunctl:mtu(<<"cc-nope">>)),
    ok = tunctl:close(FD),
    ?assertEqual({error, ebadf}, tunctl:persist(FD, true)),
    ?assertEqual({error, ebadf}, tunctl:stats(FD)),
    ?assertNot(exists("cc-tunctl0")),
    % default create: a kernel-named TAP device
    {ok, FD2, Tap} = tunctl:create(),
    ?assertMatch(<<"tap", _/binary>>, Tap),
    ok = tunctl:close(FD2).

%%--------------------------------------------------------------------
%%% Helpers
%%--------------------------------------------------------------------

addrs(Name) ->
    ip("-o addr show dev " ++ to_string(Name)).

links() ->
    lists:sort([
        hd(string:lexemes(lists:nth(2, string:lexemes(L, ":")), " @"))
     || L <- string:lexemes(ip("-o link show"), "\n")
    ]).

is_up(Name) ->
    re:run(ip("-o link show " ++ to_string(Name)), "[<,]UP[,>]") =/= nomatch.

sysctl(Key, Value) ->
    file:write_file("/proc/sys/" ++ Key, Value).

% The first entry of /etc/passwd or /etc/group other than root.
first_entry(File) ->
    {ok, Data} = file:read_file(File),
    [{Name, Id} | _] = [
        {binary_to_list(N), binary_to_integer(I)}
     || Line <- binary:split(Data, <<"\n">>, [global]),
        [N, _, I | _] <- [binary:split(Line, <<":">>, [global])],
        N =/= <<"root">>
    ],
    {Name, Id}.

active_match(Dev, Match) ->
    tunctl_test_lib:active_match(Dev, Match, 3000).

quiet(Dev, Ms) ->
    receive
        {tuntap, Dev, _} = M -> [M | quiet(Dev, Ms)]
    after Ms -> []
    end.

filtered(Dev) ->
    {ok, #{filtered := F}} = tuncer:stats(Dev),
    F.

% Count UDP packets per queue until Total arrived.
count_queues(_Queues, Total, Counts) when Total =< 0 ->
    Counts;
count_queues(Queues, Total, Counts) ->
    receive
        {tuntap, Q, Packet} ->
            case lists:member(Q, Queues) andalso is_udp(Packet) of
                true -> count_queues(Queues, Total - 1, maps:update_with(Q, fun(C) -> C + 1 end, 1, Counts));
                false -> count_queues(Queues, Total, Counts)
            end
    after 3000 ->
        ct:fail({missing, Total, Counts})
    end.

% Run ping -6 (3 echo requests) in another process while this one reflects
% what arrives on Dev.
ping_through(Dev, Addr) ->
    Self = self(),
    spawn_link(fun() -> Self ! {ping, os:cmd("ping -6 -c 3 -i 0.2 -W 2 -w 10 " ++ Addr ++ " 2>&1")} end),
    reflect_loop(Dev).

reflect_loop(Dev) ->
    receive
        {tuntap, Dev, Packet} ->
            case reflect6(Packet) of
                ignore -> ok;
                Reply -> ok = tuncer:send(Dev, Reply)
            end,
            reflect_loop(Dev);
        {ping, Out} ->
            ct:pal("~s", [Out]),
            Out
    after 10000 ->
        ct:fail(ping_timeout)
    end.

%%--------------------------------------------------------------------
%%% Packets
%%--------------------------------------------------------------------

is_udp(<<4:4, _:68, 17, _/binary>>) -> true;
is_udp(<<6:4, _:44, 17, _/binary>>) -> true;
is_udp(_) -> false.

is_echo6(<<6:4, _:44, 58, _Hop, _:32/binary, 128, _/binary>>) -> true;
is_echo6(_) -> false.

% ICMPv6 echo request -> echo reply, addresses swapped; the checksum is
% patched for the type change (RFC 1624), as examples/reflector.erl.
reflect6(<<Fixed:6/binary, 58, Hop, Src:16/binary, Dst:16/binary, 128, Code, Csum:16, Body/binary>>) ->
    <<Fixed/binary, 58, Hop, Dst/binary, Src/binary, 129, Code, (csum_adjust(Csum, 128 bsl 8, 129 bsl 8)):16,
        Body/binary>>;
reflect6(_) ->
    ignore.

csum_adjust(Csum, Old, New) ->
    S = (bnot Csum band 16#ffff) + (bnot Old band 16#ffff) + New,
    S1 = (S band 16#ffff) + (S bsr 16),
    S2 = (S1 band 16#ffff) + (S1 bsr 16),
    bnot S2 band 16#ffff.
