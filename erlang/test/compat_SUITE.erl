%% Drop-in compatibility with msantos/tunctl 1.0 (issue 11), one case per
%% item, against real devices in the private namespace of scripts/in-netns
%% (the suite refuses to run anywhere else). Each case writes its code as
%% a program written against 1.0 would: return shapes are matched exactly.
%%
%% Addresses: 198.18.0.0/15 and 2001:db8::/32 only.
-module(compat_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").
% 1.0's header, compiled without procket
-include_lib("tunctl/include/tuntap.hrl").

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1]).
-export([
    create_options/1,
    read_write_any_mode/1,
    linc_pattern/1,
    getfd_destroy_while_held/1,
    getfd_once_per_device/1,
    getfd_cycles/1,
    up_sets_primary/1,
    up_reattach/1,
    dstaddr_broadcast/1,
    return_shapes/1,
    send_errors/1,
    destroy_brings_link_down/1,
    exports/1,
    ioctl/1,
    original_suite/1
]).

-import(tunctl_test_lib, [ip/1, exists/1, fd_count/1, my_ports/0]).
-import(tunctl_test_lib, [udp_setup/3, parse_udp/1]).

suite() ->
    [{timetrap, {seconds, 120}}].

all() ->
    [
        create_options,
        read_write_any_mode,
        linc_pattern,
        getfd_destroy_while_held,
        getfd_once_per_device,
        getfd_cycles,
        up_sets_primary,
        up_reattach,
        dstaddr_broadcast,
        return_shapes,
        send_errors,
        destroy_brings_link_down,
        exports,
        ioctl,
        original_suite
    ].

init_per_suite(Config) ->
    tunctl_test_lib:init_suite(Config).

end_per_suite(_Config) ->
    ok.

%%--------------------------------------------------------------------
%%% 1. create/2 options
%%--------------------------------------------------------------------

create_options(_Config) ->
    % {port_options, _} reaches the port; the default disables both busy
    % limits (not observable), parallelism is
    {ok, Dev} = tuncer:create(<<"ct-cpo0">>, [
        tap, no_pi, {port_options, [{parallelism, true}, {busy_limits_port, {4096, 8192}}, {busy_limits_msgq, disabled}]}
    ]),
    ?assertEqual({parallelism, true}, erlang:port_info(port_of(Dev), parallelism)),
    {ok, Plain} = tuncer:create(<<"ct-cpo1">>, [tap, no_pi]),
    ?assertEqual({parallelism, false}, erlang:port_info(port_of(Plain), parallelism)),
    % names of 16 bytes or more, names and options of the wrong type
    ?assertEqual({error, badargs}, tuncer:create(<<"0123456789abcdef">>, [tap])),
    ?assertEqual({error, badargs}, tuncer:create("0123456789abcdef")),
    ?assertEqual({error, badargs}, tuncer:create(<<"ct-cpo2">>, not_a_list)),
    ?assertEqual({error, badargs}, tuncer:create(not_a_name, [])),
    % unknown options are ignored, as 1.0 did
    {ok, Ignored} = tuncer:create(<<"ct-cpo2">>, [tap, no_pi, {bogus, 1}, bogus_flag, {extra, []}]),
    ?assert(exists("ct-cpo2")),
    [ok = tuncer:destroy(D) || D <- [Dev, Plain, Ignored]],
    ok.

%%--------------------------------------------------------------------
%%% 2. read/write on getfd/1's integer, whatever the mode
%%--------------------------------------------------------------------

read_write_any_mode(_Config) ->
    {Dev, Sock} = udp_setup(<<"ct-crw0">>, 60, [tun, no_pi, {active, true}]),
    FD = tuncer:getfd(Dev),
    {ok, Port} = inet:port(Sock),
    Count = 50,
    [ok = gen_udp:send(Sock, {198, 18, 60, 2}, 4242, <<N:32>>) || N <- lists:seq(1, Count)],
    % both readers take packets: read/1 (which then are not delivered) and
    % the active owner; each packet reaches exactly one of them
    Seen = collect(Dev, FD, Count, []),
    ?assertEqual(lists:seq(1, Count), lists:sort(Seen)),
    ?assertEqual({error, eagain}, tuncer:read(FD)),
    % write/2 on an active device
    ok = tuncer:write(FD, udp_packet({198, 18, 60, 2}, {198, 18, 60, 1}, 4242, Port, <<"back">>)),
    ?assertEqual({ok, {{198, 18, 60, 2}, 4242, <<"back">>}}, gen_udp:recv(Sock, 0, 2000)),
    ok = tuncer:destroy(Dev),
    ?assertEqual({error, ebadf}, tuncer:read(FD)).

collect(_Dev, _FD, 0, Acc) ->
    Acc;
collect(Dev, FD, Left, Acc) ->
    receive
        {tuntap, Dev, Packet} -> collect(Dev, FD, Left - 1, [seq(Packet) | Acc])
    after 0 ->
        case tuncer:read(FD) of
            {ok, Packet} ->
                collect(Dev, FD, Left - 1, [seq(Packet) | Acc]);
            {error, eagain} ->
                receive
                    {tuntap, Dev, Packet} -> collect(Dev, FD, Left - 1, [seq(Packet) | Acc])
                after 5 -> collect(Dev, FD, Left, Acc)
                end
        end
    end.

seq(Packet) ->
    {_, _, _, 4242, <<N:32>>} = parse_udp(Packet),
    N.

%%--------------------------------------------------------------------
%%% 3. getfd/1: a real descriptor (LINC-Switch's pattern, unchanged)
%%--------------------------------------------------------------------

% LINC-Switch: Fd = tuncer:getfd(Ref), Port = open_port({fd, Fd, Fd},
% [binary]), frames in and out through the port. Eight TAP devices.
linc_pattern(_Config) ->
    Base = fd_count("self"),
    Ids = lists:seq(1, 8),
    Devs = [{I, linc_open(I)} || I <- Ids],
    % a frame from the kernel: the ARP request for a neighbour that does
    % not answer, sent when a datagram is routed out of the device
    [
        begin
            {ok, S} = gen_udp:open(0, [{ip, {198, 18, 60 + I, 1}}]),
            ok = gen_udp:send(S, {198, 18, 60 + I, 2}, 9, <<"arp me">>),
            ok = gen_udp:close(S)
        end
     || I <- Ids
    ],
    [?assertEqual({198, 18, 60 + I, 2}, arp_target(Port)) || {I, {_, Port, _}} <- Devs],
    % a frame written with port_command/2 enters the device (its rx counter)
    [
        begin
            Before = rx_packets(Name),
            Frame = <<16#ff, 16#ff, 16#ff, 16#ff, 16#ff, 16#ff, 2, 0, 0, 0, 0, I, 16#88, 16#b5, 0:(46 * 8)>>,
            true = port_command(Port, Frame),
            ok = tunctl_test_lib:wait(fun() -> rx_packets(Name) > Before end, 2000, timeout)
        end
     || {I, {_, Port, Name}} <- Devs
    ],
    % nothing left after destroy/1: no device, no port program, the
    % ports on the descriptors closed (end of file), no descriptor held
    [ok = tuncer:destroy(Dev) || {_, {Dev, _, _}} <- Devs],
    [?assertNot(exists(Name)) || {_, {_, _, Name}} <- Devs],
    ok = tunctl_test_lib:wait(fun() -> [P || {_, {_, P, _}} <- Devs, erlang:port_info(P) =/= undefined] =:= [] end, 2000, timeout),
    ?assertEqual([], tunctl_fds:held()),
    ?assertEqual(0, my_ports()),
    ok = tunctl_test_lib:wait_fds(Base, 2000).

linc_open(I) ->
    Name = iolist_to_binary(["ct-linc", integer_to_list(I)]),
    {ok, Ref} = tuncer:create(Name, [tap, no_pi]),
    Fd = tuncer:getfd(Ref),
    Port = open_port({fd, Fd, Fd}, [binary]),
    ok = tuncer:up(Ref, {198, 18, 60 + I, 1}, 24),
    {Ref, Port, Name}.

% The target of the next ARP request arriving on the port.
arp_target(Port) ->
    receive
        {Port, {data, <<_:12/binary, 16#0806:16, 1:16, 16#0800:16, 6, 4, 1:16, _:10/binary, _:6/binary, A, B, C, D, _/binary>>}} ->
            {A, B, C, D};
        {Port, {data, _}} ->
            arp_target(Port)
    after 5000 ->
        ct:fail({no_arp, Port})
    end.

rx_packets(Name) ->
    {ok, Dev} = file:read_file("/proc/net/dev"),
    [Line] = [L || L <- binary:split(Dev, <<"\n">>, [global]), string:prefix(string:trim(L), [Name, ":"]) =/= nomatch],
    [_, Counters] = binary:split(Line, <<":">>),
    [_RxBytes, RxPackets | _] = string:lexemes(Counters, " "),
    binary_to_integer(RxPackets).

% destroy/1 removes a non-persistent device while the VM holds a
% descriptor on it (and a port is open on that descriptor).
getfd_destroy_while_held(_Config) ->
    {ok, Dev} = tuncer:create(<<"ct-cfd0">>, [tap, no_pi]),
    Fd = tuncer:getfd(Dev),
    Port = open_port({fd, Fd, Fd}, [binary]),
    ok = tuncer:destroy(Dev),
    ?assertNot(exists("ct-cfd0")),
    ok = tunctl_test_lib:wait(fun() -> erlang:port_info(Port) =:= undefined end, 2000, timeout),
    ?assertEqual([], tunctl_fds:held()).

% A descriptor is passed when getfd/1 is first called for a device, and
% only then: at most one per device.
getfd_once_per_device(_Config) ->
    {ok, Dev} = tuncer:create(<<"ct-cfd1">>, [tun, no_pi]),
    Before = fd_count("self"),
    Fd = tuncer:getfd(Dev),
    ?assertEqual(Before + 1, fd_count("self")),
    ?assertEqual([Fd, Fd, Fd], [tuncer:getfd(Dev) || _ <- [1, 2, 3]]),
    ?assertEqual(Before + 1, fd_count("self")),
    ?assertEqual([Fd], tunctl_fds:held()),
    ?assertMatch({ok, "socket:" ++ _}, file:read_link("/proc/self/fd/" ++ integer_to_list(Fd))),
    % the VM holds no TUN/TAP descriptor: only the port does
    {ok, Fds} = file:list_dir("/proc/self/fd"),
    ?assertEqual([], [F || F <- Fds, file:read_link("/proc/self/fd/" ++ F) =:= {ok, "/dev/net/tun"}]),
    ok = tuncer:destroy(Dev),
    ?assertEqual([], tunctl_fds:held()),
    ?assertEqual({error, ebadf}, tuncer:read(Fd)).

% What doc/design.md says: after any number of create/getfd/destroy
% cycles the VM holds no descriptor for them.
getfd_cycles(_Config) ->
    ct:timetrap({seconds, 600}),
    Base = fd_count("self"),
    Cycle = fun(_) ->
        {ok, Dev} = tuncer:create(<<"ct-cyc0">>, [tap, no_pi]),
        Fd = tuncer:getfd(Dev),
        true = is_integer(Fd),
        ok = tuncer:destroy(Dev)
    end,
    lists:foreach(Cycle, lists:seq(1, 1000)),
    ?assertEqual([], tunctl_fds:held()),
    ok = tunctl_test_lib:wait_fds(Base, 5000),
    ct:pal("descriptors before: ~p, after 1000 cycles: ~p", [Base, fd_count("self")]).

%%--------------------------------------------------------------------
%%% 4. up/2,3 set the primary IPv4 address
%%--------------------------------------------------------------------

up_sets_primary(_Config) ->
    {ok, Tap} = tuncer:create(<<"ct-cup0">>, [tap, no_pi]),
    ok = tuncer:up(Tap, "198.18.80.1"),
    ?assertEqual(["198.18.80.1/32 brd 198.18.80.255"], inet4("ct-cup0")),
    % the same address again: ok, nothing changes
    ok = tuncer:up(Tap, {198, 18, 80, 1}),
    ?assertEqual(["198.18.80.1/32 brd 198.18.80.255"], inet4("ct-cup0")),
    % a new address replaces the primary one
    ok = tuncer:up(Tap, {198, 18, 80, 2}),
    ?assertEqual(["198.18.80.2/32 brd 198.18.80.255"], inet4("ct-cup0")),
    ok = tuncer:up(Tap, "198.18.81.1", 24),
    ?assertEqual(["198.18.81.1/24 brd 198.18.81.255"], inet4("ct-cup0")),
    % more addresses under the new name; up/2 still replaces the primary
    ok = tuncer:addr_add(Tap, "198.18.82.1"),
    ok = tuncer:addr_add(Tap, "198.18.83.1", 24),
    ?assertEqual({error, eexist}, tuncer:addr_add(Tap, "198.18.83.1", 24)),
    ?assertEqual(
        ["198.18.81.1/24 brd 198.18.81.255", "198.18.82.1/32 brd 198.18.82.255", "198.18.83.1/24 brd 198.18.83.255"],
        lists:sort(inet4("ct-cup0"))
    ),
    ok = tuncer:up(Tap, "198.18.81.9", 24),
    ?assertEqual(
        ["198.18.81.9/24 brd 198.18.81.255", "198.18.82.1/32 brd 198.18.82.255", "198.18.83.1/24 brd 198.18.83.255"],
        lists:sort(inet4("ct-cup0"))
    ),
    % addr_del/2 finds the prefix in the kernel
    ok = tuncer:addr_del(Tap, "198.18.83.1"),
    ?assertEqual({error, eaddrnotavail}, tuncer:addr_del(Tap, "198.18.83.1")),
    % IPv6 (not in 1.0): added, again is ok
    ok = tuncer:up(Tap, "2001:db8:80::1"),
    ok = tuncer:up(Tap, "2001:db8:80::1"),
    ?assertMatch({match, _}, re:run(ip("-6 -o addr show dev ct-cup0"), "2001:db8:80::1/64")),
    % a TUN link is point-to-point: /32, no broadcast
    {ok, Tun} = tuncer:create(<<"ct-cup1">>, [tun, no_pi]),
    ok = tuncer:up(Tun, "198.18.84.1"),
    ?assertEqual(["198.18.84.1/32"], inet4("ct-cup1")),
    % tunctl:up/2 is /32 too
    {ok, _FD, Name} = tunctl:create(<<"ct-cup2">>, [tap, no_pi]),
    ok = tunctl:up(Name, {198, 18, 85, 1}),
    ?assertEqual(["198.18.85.1/32 brd 198.18.85.255"], inet4("ct-cup2")),
    ok = tunctl:down(Name),
    [ok = tuncer:destroy(D) || D <- [Tap, Tun]].

% Re-attaching one's own persistent device and calling up/2 again is ok
% (what a program does on every restart).
up_reattach(_Config) ->
    {ok, Dev} = tuncer:create(<<"ct-cup3">>, [tap, no_pi]),
    ok = tuncer:persist(Dev, true),
    ok = tuncer:up(Dev, "198.18.86.1"),
    ok = tuncer:destroy(Dev),
    ?assert(exists("ct-cup3")),
    {ok, Again} = tuncer:create(<<"ct-cup3">>, [tap, no_pi]),
    ok = tuncer:up(Again, "198.18.86.1"),
    ?assertEqual(["198.18.86.1/32 brd 198.18.86.255"], inet4("ct-cup3")),
    ok = tuncer:persist(Again, false),
    ok = tuncer:destroy(Again),
    ?assertNot(exists("ct-cup3")).

dstaddr_broadcast(_Config) ->
    {ok, Tun} = tuncer:create(<<"ct-cup4">>, [tun, no_pi]),
    ok = tuncer:up(Tun, "198.18.87.1"),
    ok = tuncer:dstaddr(Tun, "198.18.87.2"),
    ?assertEqual(["198.18.87.1 peer 198.18.87.2/32"], inet4("ct-cup4")),
    % again, with another peer (the kernel changes the primary address)
    ok = tuncer:dstaddr(Tun, {198, 18, 87, 3}),
    ?assertEqual(["198.18.87.1 peer 198.18.87.3/32"], inet4("ct-cup4")),
    {ok, Tap} = tuncer:create(<<"ct-cup5">>, [tap, no_pi]),
    ok = tuncer:up(Tap, "198.18.88.1", 24),
    ok = tuncer:broadcast(Tap, "198.18.88.3"),
    ?assertEqual(["198.18.88.1/24 brd 198.18.88.3"], inet4("ct-cup5")),
    % IPv6 peers (not in 1.0): the newest IPv6 address gets the peer
    ok = tuncer:up(Tun, "2001:db8:87::1", 64),
    ok = tuncer:dstaddr(Tun, "2001:db8:87::2"),
    ?assertMatch({match, _}, re:run(ip("-6 -o addr show dev ct-cup4"), "2001:db8:87::1 peer 2001:db8:87::2/128")),
    [ok = tuncer:destroy(D) || D <- [Tun, Tap]].

% "inet A/N brd B" for each IPv4 address of an interface, from ip(8).
inet4(Name) ->
    Out = ip("-4 -o addr show dev " ++ Name),
    [
        string:trim(hd(string:split(Rest, " scope")))
     || Line <- string:lexemes(Out, "\n"),
        [_, Rest] <- [string:split(Line, "inet ")]
    ].

%%--------------------------------------------------------------------
%%% 5. Return shapes
%%--------------------------------------------------------------------

return_shapes(_Config) ->
    {ok, Dev} = tuncer:create(<<"ct-csh0">>, [tun]),
    Fd = tuncer:getfd(Dev),
    ?assertEqual({ok, 1500}, tuncer:mtu(Dev)),
    ?assertEqual({ok, Fd, <<"ct-csh0">>}, tuncer:mtu(Dev, 1400)),
    ?assertEqual({ok, 1400}, tuncer:mtu(Dev)),
    ?assertEqual({ok, Fd, <<"ct-csh0">>}, tunctl:mtu(Fd, <<"ct-csh0">>, 1300)),
    ?assertEqual({ok, 1300}, tunctl:mtu(<<"ct-csh0">>)),
    ?assertEqual({error, enodev}, tunctl:mtu(Fd, <<"ct-other">>, 1300)),
    % header/1: 1.0's tuple, both fields in host byte order
    <<Proto6:16/native>> = <<16#86, 16#dd>>,
    ?assertEqual({tun_pi, 0, Proto6, <<1, 2, 3>>}, tuncer:header(<<0, 0, 16#86, 16#dd, 1, 2, 3>>)),
    ?assertEqual({tun_pi, 0, Proto6, <<1, 2, 3>>}, tunctl:header(<<0, 0, 16#86, 16#dd, 1, 2, 3>>)),
    % on a real packet: the kernel's router solicitation, from a TUN
    % device with packet information
    ok = tuncer:setopt(Dev, {active, true}),
    ok = tuncer:up(Dev, "198.18.89.1"),
    receive
        {tuntap, Dev, Packet} ->
            {tun_pi, 0, Proto, <<Version:4, _/bitstring>>} = tuncer:header(Packet),
            ?assertEqual(#tun_pi{flags = 0, proto = Proto}, #tun_pi{flags = 0, proto = ether(Version)})
    after 15000 ->
        ct:fail(no_packet)
    end,
    % the map form stays, as header/2
    ?assertMatch({ok, #{flags := 0, proto := 16#86dd}, <<1>>}, tuncer:header(<<0, 0, 16#86, 16#dd, 1>>, [tun])),
    ok = tuncer:destroy(Dev).

ether(4) ->
    <<P:16/native>> = <<16#08, 16#00>>,
    P;
ether(6) ->
    <<P:16/native>> = <<16#86, 16#dd>>,
    P.

%%--------------------------------------------------------------------
%%% 6. send/2 errors
%%--------------------------------------------------------------------

send_errors(_Config) ->
    {ok, Tap} = tuncer:create(<<"ct-cse0">>, [tap, no_pi]),
    {ok, Tun} = tuncer:create(<<"ct-cse1">>, [tun, no_pi]),
    {ok, TunPI} = tuncer:create(<<"ct-cse2">>, [tun]),
    % what the kernel would refuse is refused at once
    ?assertEqual({error, einval}, tuncer:send(Tap, <<1:(13 * 8)>>)),
    ?assertEqual({error, einval}, tuncer:send(Tun, <<16#55, 0:(19 * 8)>>)),
    ?assertEqual({error, einval}, tuncer:send(Tun, <<>>)),
    ?assertEqual({error, einval}, tuncer:send(TunPI, <<0, 0, 8>>)),
    ?assertEqual({error, einval}, tuncer:write(tuncer:getfd(Tap), [<<1, 2>>, <<3>>])),
    % valid frames take the asynchronous path
    ?assertEqual(ok, tuncer:send(Tap, <<16#ff:48, 2, 0, 0, 0, 0, 1, 16#88, 16#b5, 0:(46 * 8)>>)),
    ?assertEqual(ok, tuncer:send(Tun, [<<16#45, 0>>, <<0:(18 * 8)>>])),
    ?assertEqual(ok, tuncer:send(TunPI, <<0, 0, 16#88, 16#b5, 16#55>>)),
    % a dead device: the caller exits, as a gen_server:call does
    ok = tuncer:destroy(Tap),
    ?assertExit({noproc, _}, tuncer:send(Tap, <<0:(60 * 8)>>)),
    [ok = tuncer:destroy(D) || D <- [Tun, TunPI]].

%%--------------------------------------------------------------------
%%% 7. destroy/1 of an attached persistent device
%%--------------------------------------------------------------------

destroy_brings_link_down(_Config) ->
    {ok, Dev} = tuncer:create(<<"ct-cdd0">>, [tap, no_pi]),
    ok = tuncer:persist(Dev, true),
    ok = tuncer:up(Dev, "198.18.90.1"),
    % persistent at this owner's request: destroy/1 leaves it up
    ok = tuncer:destroy(Dev),
    ?assert(is_up("ct-cdd0")),
    % attached, persistent, not at this owner's request: link down
    {ok, Attached} = tuncer:create(<<"ct-cdd0">>, [tap, no_pi]),
    ok = tuncer:destroy(Attached),
    ?assert(exists("ct-cdd0")),
    ?assertNot(is_up("ct-cdd0")),
    {ok, Last} = tuncer:create(<<"ct-cdd0">>, [tap, no_pi]),
    ok = tuncer:persist(Last, false),
    ok = tuncer:destroy(Last),
    ?assertNot(exists("ct-cdd0")).

is_up(Name) ->
    re:run(ip("-o link show " ++ Name), "[<,]UP[,>]") =/= nomatch.

%%--------------------------------------------------------------------
%%% 8. Exports, types, include/tuntap.hrl
%%--------------------------------------------------------------------

exports(_Config) ->
    % start_link/2: a device linked to the caller
    {ok, Dev} = tuncer:start_link(<<"ct-cex0">>, [tap, no_pi]),
    {links, Links} = process_info(self(), links),
    ?assert(lists:member(Dev, Links)),
    ?assertEqual(<<"ct-cex0">>, tuncer:devname(Dev)),
    ok = tuncer:destroy(Dev),
    ?assertEqual(
        [{dev, 0}, {options, 0}, {port_options, 0}],
        [T || T <- export_types(tuncer), lists:member(T, [{dev, 0}, {options, 0}, {port_options, 0}])]
    ),
    ?assertEqual([{fd, 0}, {uint16_t, 0}], [T || T <- export_types(tunctl), lists:member(T, [{fd, 0}, {uint16_t, 0}])]),
    % the header's macros and records (this suite includes it)
    ?assertEqual(16#400454ca, ?TUNSETIFF),
    ?assertEqual(16#800454d2, ?TUNGETIFF),
    ?assertEqual({tun_pi, 1, 2}, #tun_pi{flags = 1, proto = 2}),
    ?assertEqual(<<5:?UINT16>>, <<?UINT16(5)>>).

export_types(Mod) ->
    {ok, {Mod, [{abstract_code, {raw_abstract_v1, Forms}}]}} = beam_lib:chunks(code:which(Mod), [abstract_code]),
    lists:sort(lists:append([Ts || {attribute, _, export_type, Ts} <- Forms])).

ioctl(_Config) ->
    {ok, FD, Name} = tunctl:create(<<"ct-cio0">>, [tap, no_pi]),
    ok = tunctl:ioctl(FD, ?TUNSETPERSIST, 1),
    ok = tunctl:ioctl(FD, ?TUNGETIFF, <<0:(40 * 8)>>),
    ok = tunctl:ioctl(FD, ?TUNSETSNDBUF, <<65536:?UINT32>>),
    ?assertEqual({error, eperm}, tunctl:ioctl(FD, 16#8913, 0)),
    ?assertEqual({error, ebadf}, tunctl:ioctl(16#7ffffff0, ?TUNSETPERSIST, 0)),
    ok = tunctl:close(FD),
    % persistent by the ioctl: it outlives the close
    ?assert(exists(Name)),
    {ok, FD2, Name} = tunctl:create(Name, [tap, no_pi]),
    ok = tunctl:ioctl(FD2, ?TUNSETPERSIST, 0),
    ok = tunctl:close(FD2),
    ?assertNot(exists(Name)).

%%--------------------------------------------------------------------
%%% msantos/tunctl 1.0's own test suite (test/tuncer_SUITE.erl), its cases
%%% as written there, with 198.18.0.0/15 addresses
%%--------------------------------------------------------------------

original_suite(_Config) ->
    % create/1
    {ok, Created} = tuncer:create("tuncer", [tun, no_pi, {active, false}]),
    tuncer:down(Created),
    lists:foreach(
        fun(Case) ->
            {ok, Dev} = tuncer:create(orig_ifname()),
            Case(Dev),
            ok = tuncer:down(Dev)
        end,
        [
            % up/1
            fun(Dev) -> ok = tuncer:up(Dev, orig_ipaddr()) end,
            % recvsend/1
            fun(Dev) ->
                ok = tuncer:up(Dev, orig_ipaddr()),
                {ok, Bin} = orig_recv(Dev),
                ok = tuncer:send(Dev, Bin)
            end,
            % readwrite/1
            fun(Dev) ->
                ok = tuncer:up(Dev, orig_ipaddr()),
                FD = tuncer:getfd(Dev),
                {ok, Bin} = orig_read(FD),
                ok = tuncer:write(FD, Bin)
            end,
            % dstaddr/1, broadcast/1 (the linux group)
            fun(Dev) ->
                ok = tuncer:up(Dev, "198.19.173.1"),
                ok = tuncer:dstaddr(Dev, "198.19.173.2")
            end,
            fun(Dev) ->
                ok = tuncer:up(Dev, "198.19.174.1"),
                ok = tuncer:broadcast(Dev, "198.19.174.3")
            end
        ]
    ),
    ok = tuncer:destroy(Created).

orig_ifname() ->
    lists:concat(["tuncer", erlang:unique_integer([positive, monotonic])]).

orig_ipaddr() ->
    N = rand:uniform(16#FFFF),
    {198, 19, N band 16#FF00 bsr 8, N band 16#FF}.

orig_recv(Dev) ->
    case tuncer:recv(Dev) of
        {ok, _} = X -> X;
        {error, eagain} -> orig_recv(Dev);
        {error, _} = Error -> Error
    end.

orig_read(FD) ->
    case tuncer:read(FD) of
        {ok, _} = X -> X;
        {error, eagain} -> orig_read(FD);
        {error, _} = Error -> Error
    end.

%%--------------------------------------------------------------------
%%% Helpers
%%--------------------------------------------------------------------

port_of(Dev) ->
    {links, Links} = process_info(Dev, links),
    [Port] = [L || L <- Links, is_port(L)],
    Port.

% An IPv4/UDP packet (checksum 0: none).
udp_packet({A, B, C, D}, {E, F, G, H}, SPort, DPort, Payload) ->
    Len = 8 + byte_size(Payload),
    Hdr = <<4:4, 5:4, 0, (20 + Len):16, 0:16, 0:16, 64, 17, 0:16, A, B, C, D, E, F, G, H>>,
    <<4:4, 5:4, 0, (20 + Len):16, 0:16, 0:16, 64, 17, (csum(Hdr)):16, A, B, C, D, E, F, G, H, SPort:16, DPort:16,
        Len:16, 0:16, Payload/binary>>.

csum(Bin) ->
    Sum = lists:sum([W || <<W:16>> <= Bin]),
    Folded = (Sum band 16#ffff) + (Sum bsr 16),
    bnot ((Folded band 16#ffff) + (Folded bsr 16)) band 16#ffff.
