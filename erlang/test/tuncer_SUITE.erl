%% Real devices, real packets. Needs CAP_NET_ADMIN and a private network
%% namespace (make ct runs it through scripts/in-netns); refuses to run
%% anywhere else.
%%
%% Addresses: 198.18.0.0/15 and 2001:db8::/32 only.
-module(tuncer_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1]).
-export([
    kernel_named_tap/1,
    named_tun/1,
    tun_reflect_passive/1,
    tun_reflect_active/1,
    read_write_handle/1,
    burst/1,
    active_once/1,
    active_n/1,
    controlling_process/1,
    recv_timeout/1,
    owner_exit/1,
    destroy/1,
    bad_arguments/1,
    tap_arp/1,
    ipv6/1,
    link_config/1,
    persist_owner_group/1,
    port_exit/1,
    sigkill/1,
    tunctl_compat/1
]).

-import(tunctl_test_lib, [ip/1, exists/1, wait_gone/2, wait_dead/2, alive/1]).
-import(tunctl_test_lib, [udp_setup/3, recv_until/2, is_udp_to/2, parse_udp/1, reflect/1]).

-include_lib("tunctl/include/tunctl_proto.hrl").

suite() ->
    [{timetrap, {seconds, 60}}].

all() ->
    [
        kernel_named_tap,
        named_tun,
        tun_reflect_passive,
        tun_reflect_active,
        read_write_handle,
        burst,
        active_once,
        active_n,
        controlling_process,
        recv_timeout,
        owner_exit,
        destroy,
        bad_arguments,
        tap_arp,
        ipv6,
        link_config,
        persist_owner_group,
        port_exit,
        sigkill,
        tunctl_compat
    ].

init_per_suite(Config) ->
    tunctl_test_lib:init_suite(Config).

end_per_suite(_Config) ->
    ok.

%%--------------------------------------------------------------------
%%% Tests
%%--------------------------------------------------------------------

kernel_named_tap(_Config) ->
    {ok, Dev} = tuncer:create(),
    Name = tuncer:devname(Dev),
    ?assertMatch(<<"tap", _/binary>>, Name),
    Flags = tuncer:flags(Dev),
    ?assertEqual(?TUNCTL_IFF_TAP, Flags band ?TUNCTL_IFF_TAP),
    ?assertEqual(?TUNCTL_IFF_NO_PI, Flags band ?TUNCTL_IFF_NO_PI),
    FD = tuncer:getfd(Dev),
    ?assert(is_integer(FD) andalso FD > 0),
    ?assert(exists(Name)),
    ?assertEqual({error, eagain}, tuncer:recv(Dev)),
    ok = tuncer:destroy(Dev),
    ?assertNot(exists(Name)),

    {ok, Tun} = tuncer:create(<<>>, [tun]),
    TunName = tuncer:devname(Tun),
    ?assertMatch(<<"tun", _/binary>>, TunName),
    % options given without no_pi: no_pi is not added
    ?assertMatch({match, _}, re:run(ip("-d link show " ++ binary_to_list(TunName)), "tun type tun pi on")),
    ?assertEqual(0, tuncer:flags(Tun) band ?TUNCTL_IFF_NO_PI),
    ok = tuncer:destroy(Tun).

named_tun(_Config) ->
    {ok, Dev} = tuncer:create(<<"ct-tun0">>, [tun, no_pi]),
    ?assertEqual(<<"ct-tun0">>, tuncer:devname(Dev)),
    ?assertEqual(?TUNCTL_IFF_TUN bor ?TUNCTL_IFF_NO_PI, tuncer:flags(Dev) band (?TUNCTL_IFF_TUN bor ?TUNCTL_IFF_TAP bor ?TUNCTL_IFF_NO_PI)),
    ?assert(exists("ct-tun0")),
    % string names
    {ok, Dev1} = tuncer:create("ct-tun1", [tun, no_pi, {active, true}]),
    ?assertEqual(<<"ct-tun1">>, tuncer:devname(Dev1)),
    % the name is taken
    ?assertMatch({error, _}, tuncer:create(<<"ct-tun0">>, [tun, no_pi, tun_excl])),
    ok = tuncer:destroy(Dev),
    ok = tuncer:destroy(Dev1).

tun_reflect_passive(_Config) ->
    {Dev, Sock} = udp_setup(<<"ct-pass0">>, 0, [tun, no_pi]),
    {ok, Port} = inet:port(Sock),
    ok = gen_udp:send(Sock, {198, 18, 0, 2}, 4242, <<"ping">>),
    Packet = recv_udp(Dev, 4242),
    {Src, Dst, SPort, DPort, Payload} = parse_udp(Packet),
    ?assertEqual({{198, 18, 0, 1}, {198, 18, 0, 2}, Port, 4242, <<"ping">>}, {Src, Dst, SPort, DPort, Payload}),
    ok = tuncer:send(Dev, reflect(Packet)),
    ?assertEqual({ok, {{198, 18, 0, 2}, 4242, <<"ping">>}}, gen_udp:recv(Sock, 0, 2000)),
    ok = tuncer:destroy(Dev).

tun_reflect_active(_Config) ->
    {Dev, Sock} = udp_setup(<<"ct-act0">>, 1, [tun, no_pi, {active, true}]),
    ?assertEqual({error, einval}, tuncer:recv(Dev)),
    ?assertEqual({error, einval}, tuncer:recv(Dev, 1500, 10)),
    [ok = gen_udp:send(Sock, {198, 18, 1, 2}, 4242, <<N>>) || N <- lists:seq(1, 10)],
    Packets = [active_udp(Dev, 4242) || _ <- lists:seq(1, 10)],
    ?assertEqual([<<N>> || N <- lists:seq(1, 10)], [element(5, parse_udp(P)) || P <- Packets]),
    [ok = tuncer:send(Dev, reflect(P)) || P <- Packets],
    [?assertEqual({ok, {{198, 18, 1, 2}, 4242, <<N>>}}, gen_udp:recv(Sock, 0, 2000)) || N <- lists:seq(1, 10)],
    % iodata
    [First | _] = Packets,
    Reflected = reflect(First),
    <<Head:10/binary, Tail/binary>> = Reflected,
    ok = tuncer:send(Dev, [Head, [Tail]]),
    ?assertEqual({ok, {{198, 18, 1, 2}, 4242, <<1>>}}, gen_udp:recv(Sock, 0, 2000)),
    ok = tuncer:destroy(Dev).

read_write_handle(_Config) ->
    {Dev, Sock} = udp_setup(<<"ct-fd0">>, 2, [tun, no_pi]),
    FD = tuncer:getfd(Dev),
    ?assertEqual({error, eagain}, tuncer:read(FD)),
    ok = gen_udp:send(Sock, {198, 18, 2, 2}, 4242, <<"fd">>),
    Packet = poll(fun() -> tuncer:read(FD, 1500) end),
    ?assertMatch({_, _, _, 4242, <<"fd">>}, parse_udp(Packet)),
    % read truncates like read(2)
    ok = gen_udp:send(Sock, {198, 18, 2, 2}, 4242, <<"truncated">>),
    Short = poll(fun() -> tuncer:read(FD, 20) end),
    % IPv4, total length 20 + 8 + 9, only the first 20 bytes
    ?assertMatch(<<16#45, _, 37:16, _:16/binary>>, Short),
    ok = tuncer:write(FD, reflect(Packet)),
    ?assertEqual({ok, {{198, 18, 2, 2}, 4242, <<"fd">>}}, gen_udp:recv(Sock, 0, 2000)),
    ok = tuncer:destroy(Dev),
    ?assertEqual({error, ebadf}, tuncer:read(FD)),
    ?assertEqual({error, ebadf}, tuncer:write(FD, <<1, 2, 3>>)),
    ?assertEqual({error, ebadf}, tuncer:read(16#7fffffff)).

burst(_Config) ->
    {Dev, Sock} = udp_setup(<<"ct-burst0">>, 3, [tun, no_pi]),
    ok = inet:setopts(Sock, [{recbuf, 4 * 1024 * 1024}]),
    {ok, Port} = inet:port(Sock),
    Self = self(),
    Count = 1000,
    Reader = spawn_link(fun() -> count_udp(Self, Sock, Count, #{}) end),
    ok = gen_udp:controlling_process(Sock, Reader),
    ok = inet:setopts(Sock, [{active, true}]),
    [
        ok = tuncer:send(Dev, tunctl_test_lib:udp4({198, 18, 3, 2}, {198, 18, 3, 1}, 5555, Port, <<N:32>>))
     || N <- lists:seq(1, Count)
    ],
    Seen =
        receive
            {seen, S} -> S
        after 10000 -> ct:fail(reader)
        end,
    ct:pal("burst: ~p of ~p datagrams", [map_size(Seen), Count]),
    ?assertEqual(lists:seq(1, Count), lists:sort([N || <<N:32>> <- maps:keys(Seen)])),
    unlink(Reader),
    exit(Reader, kill),
    ok = tuncer:destroy(Dev).

active_once(_Config) ->
    {Dev, Sock} = udp_setup(<<"ct-once0">>, 4, [tun, no_pi]),
    [ok = gen_udp:send(Sock, {198, 18, 4, 2}, 4242, <<N>>) || N <- [1, 2, 3]],
    ok = tuncer:setopt(Dev, {active, once}),
    P1 = active_udp(Dev, 4242),
    ?assertEqual(<<1>>, element(5, parse_udp(P1))),
    ?assertEqual([], quiet(Dev, 200)),
    ok = tuncer:setopt(Dev, {active, once}),
    ?assertEqual(<<2>>, element(5, parse_udp(active_udp(Dev, 4242)))),
    ?assertEqual([], quiet(Dev, 200)),
    % passive again: the rest is read with recv
    {ok, P3} = tuncer:recv(Dev),
    ?assertEqual(<<3>>, element(5, parse_udp(P3))),
    ok = tuncer:destroy(Dev).

active_n(_Config) ->
    {Dev, Sock} = udp_setup(<<"ct-n0">>, 5, [tun, no_pi]),
    Send = fun(L) -> [ok = gen_udp:send(Sock, {198, 18, 5, 2}, 4242, <<N>>) || N <- L] end,
    _ = Send(lists:seq(1, 3)),
    ok = tuncer:setopt(Dev, {active, 3}),
    ?assertEqual([<<N>> || N <- [1, 2, 3]], [element(5, parse_udp(active_udp(Dev, 4242))) || _ <- [1, 2, 3]]),
    ?assertEqual([{tuntap_passive, Dev}], quiet(Dev, 200)),
    % additive: 1 + 1 (nothing pending, so nothing is delivered in between)
    ok = tuncer:setopt(Dev, {active, 1}),
    ok = tuncer:setopt(Dev, {active, 1}),
    _ = Send([4, 5]),
    ?assertEqual([<<4>>, <<5>>], [element(5, parse_udp(active_udp(Dev, 4242))) || _ <- [1, 2]]),
    ?assertEqual([{tuntap_passive, Dev}], quiet(Dev, 200)),
    % a counter reaching zero or below: passive now
    ok = tuncer:setopt(Dev, {active, 0}),
    ?assertEqual([{tuntap_passive, Dev}], quiet(Dev, 100)),
    ok = tuncer:setopt(Dev, {active, 5}),
    ok = tuncer:setopt(Dev, {active, -7}),
    ?assertEqual([{tuntap_passive, Dev}], quiet(Dev, 100)),
    _ = Send([6]),
    ?assertEqual([], quiet(Dev, 200)),
    {ok, P6} = tuncer:recv(Dev),
    ?assertEqual(<<6>>, element(5, parse_udp(P6))),
    % more packets than the credit window
    ok = tuncer:setopt(Dev, {active, 280}),
    _ = Send([N rem 256 || N <- lists:seq(1, 300)]),
    Got = [active_udp(Dev, 4242) || _ <- lists:seq(1, 280)],
    ?assertEqual(280, length(Got)),
    ?assertMatch([{tuntap_passive, Dev}], quiet(Dev, 300)),
    ?assertEqual({error, badarg}, tuncer:setopt(Dev, {active, 32768})),
    ?assertEqual({error, badarg}, tuncer:setopt(Dev, {active, -32769})),
    ?assertEqual({error, badarg}, tuncer:setopt(Dev, {active, maybe})),
    ?assertEqual({error, badarg}, tuncer:setopt(Dev, {mode, binary})),
    ok = tuncer:destroy(Dev).

controlling_process(_Config) ->
    {Dev, Sock} = udp_setup(<<"ct-cp0">>, 6, [tun, no_pi, {active, true}]),
    Self = self(),
    Total = 300,
    _Sender = spawn_link(fun() ->
        [
            begin
                ok = gen_udp:send(Sock, {198, 18, 6, 2}, 4242, <<N:16>>),
                N rem 10 =:= 0 andalso timer:sleep(1)
            end
         || N <- lists:seq(1, Total)
        ],
        Self ! sent
    end),
    Mine = [seq(active_udp(Dev, 4242)) || _ <- lists:seq(1, 20)],
    New = spawn_link(fun() -> collect(Self, Dev, []) end),
    ok = tuncer:controlling_process(Dev, New),
    receive
        sent -> ok
    after 10000 -> ct:fail(sender)
    end,
    New ! {done, self()},
    Theirs =
        receive
            {collected, L} -> L
        after 5000 -> ct:fail(collect)
        end,
    ?assertEqual([], quiet(Dev, 100)),
    ?assertEqual(lists:seq(1, 20), Mine),
    ?assertEqual(lists:seq(21, Total), Theirs),
    % only the owner may move it (as msantos/tunctl)
    ?assertEqual({error, not_owner}, tuncer:controlling_process(Dev, self())),
    New ! {give_back, self()},
    receive given_back -> ok after 5000 -> ct:fail(give_back) end,
    {links, Links} = process_info(self(), links),
    ?assert(lists:member(Dev, Links)),
    New ! stop,
    ok = tuncer:destroy(Dev).

recv_timeout(_Config) ->
    {Dev, Sock} = udp_setup(<<"ct-rcv0">>, 7, [tun, no_pi]),
    {T1, R1} = timer:tc(fun() -> tuncer:recv(Dev, 1500, 150) end),
    ?assertEqual({error, timeout}, R1),
    ?assert(T1 >= 150000),
    spawn_link(fun() ->
        timer:sleep(300),
        ok = gen_udp:send(Sock, {198, 18, 7, 2}, 4242, <<"late">>)
    end),
    {T2, R2} = timer:tc(fun() -> tuncer:recv(Dev, 1500, 5000) end),
    {ok, Packet} = R2,
    ?assertEqual(<<"late">>, element(5, parse_udp(Packet))),
    ?assert(T2 >= 250000 andalso T2 < 4000000),
    % a waiting recv does not leave credit behind
    ?assertEqual({error, timeout}, tuncer:recv(Dev, 1500, 50)),
    ok = gen_udp:send(Sock, {198, 18, 7, 2}, 4242, <<"queued">>),
    timer:sleep(100),
    {ok, Queued} = tuncer:recv(Dev, 1500, infinity),
    ?assertEqual(<<"queued">>, element(5, parse_udp(Queued))),
    ok = tuncer:destroy(Dev).

owner_exit(_Config) ->
    Self = self(),
    {Pid, Ref} = spawn_monitor(fun() ->
        {ok, Dev} = tuncer:create(<<"ct-owner0">>, [tap, no_pi]),
        Self ! {dev, Dev},
        receive
            stop -> exit(crash)
        end
    end),
    Dev =
        receive
            {dev, D} -> D
        after 5000 -> ct:fail(create)
        end,
    ?assert(exists("ct-owner0")),
    Pid ! stop,
    receive
        {'DOWN', Ref, process, Pid, crash} -> ok
    end,
    ok = wait_gone("ct-owner0", 1000),
    timer:sleep(100),
    ?assertNot(is_process_alive(Dev)).

destroy(_Config) ->
    {ok, Dev} = tuncer:create(<<"ct-destroy0">>, [tun]),
    ?assert(exists("ct-destroy0")),
    ok = tuncer:destroy(Dev),
    ?assertNot(exists("ct-destroy0")),
    ?assertNot(is_process_alive(Dev)),
    % the name is free again
    {ok, Dev1} = tuncer:create(<<"ct-destroy0">>, [tun]),
    ok = tuncer:destroy(Dev1).

bad_arguments(_Config) ->
    % as msantos/tunctl 1.0: badargs; unknown options are ignored (compat_SUITE)
    ?assertEqual({error, badargs}, tuncer:create(<<"0123456789abcdef">>, [tun])),
    ?assertEqual({error, badargs}, tuncer:create("0123456789abcdef")),
    ?assertError(badarg, tuncer:create(<<"ct-bad0">>, [tun, {mtu, bogus}])),
    ?assertError(badarg, tuncer:create(<<"ct-bad0">>, [{active, 40000}])),
    ?assertEqual({error, badargs}, tuncer:create(ct_bad0, [tun])),
    {ok, Dev} = tuncer:create(<<"0123456789abcde">>, [tun, no_pi]),
    ?assertEqual(<<"0123456789abcde">>, tuncer:devname(Dev)),
    ?assertError(badarg, tuncer:send(Dev, [1, 2, foo])),
    ?assertError(badarg, tuncer:send(Dev, 42)),
    ?assertEqual({error, emsgsize}, tuncer:send(Dev, binary:copy(<<0>>, 65552))),
    ?assertEqual({error, einval}, tuncer:up(Dev, "198.18.300.1")),
    ?assertEqual({error, einval}, tuncer:up(Dev, {198, 18, 0, 1}, 33)),
    ?assertError(function_clause, tuncer:recv(Dev, 0)),
    % a packet the kernel would refuse: refused at once (compat_SUITE)
    ?assertEqual({error, einval}, tuncer:send(Dev, <<0, 1, 2>>)),
    receive
        {tuntap_error, Dev, Posix} -> ct:pal("bad packet: ~p", [Posix])
    after 500 -> ok
    end,
    ?assert(is_process_alive(Dev)),
    ?assertEqual(<<"0123456789abcde">>, tuncer:devname(Dev)),
    ?assertEqual({error, eagain}, tuncer:recv(Dev)),
    ok = tuncer:destroy(Dev).

tap_arp(_Config) ->
    {ok, Dev} = tuncer:create(<<"ct-tap0">>, [tap, no_pi, {active, true}]),
    ok = tuncer:up(Dev, {198, 18, 8, 1}, 24),
    {ok, Sock} = gen_udp:open(0, [binary, {ip, {198, 18, 8, 1}}, {active, false}]),
    ok = gen_udp:send(Sock, {198, 18, 8, 2}, 4242, <<"arp">>),
    Frame = active_match(Dev, fun
        (<<_:12/binary, 16#0806:16, _/binary>>) -> true;
        (_) -> false
    end),
    <<_Dst:6/binary, Src:6/binary, 16#0806:16, 1:16, 16#0800:16, 6, 4, 1:16, Sha:6/binary, Spa:4/binary,
        _Tha:6/binary, Tpa:4/binary, _/binary>> = Frame,
    ?assertEqual(Src, Sha),
    ?assertEqual({<<198, 18, 8, 1>>, <<198, 18, 8, 2>>}, {Spa, Tpa}),
    ok = gen_udp:close(Sock),
    ok = tuncer:destroy(Dev).

ipv6(_Config) ->
    {ok, Dev} = tuncer:create(<<"ct-v6">>, [tun, no_pi]),
    ok = tuncer:up(Dev, "2001:db8::1", 64),
    ?assertMatch({match, _}, re:run(ip("-o -6 addr show dev ct-v6"), "2001:db8::1/64")),
    ?assertMatch({match, _}, re:run(ip("-o link show ct-v6"), "[<,]UP[,>]")),
    ok = tuncer:up(Dev, <<"2001:db8:1::1">>, 128),
    ?assertMatch({match, _}, re:run(ip("-o -6 addr show dev ct-v6"), "2001:db8:1::1/128")),
    ok = tuncer:destroy(Dev).

link_config(_Config) ->
    {ok, Dev} = tuncer:create(<<"ct-link0">>, [tun, no_pi]),
    ?assertEqual({ok, 1500}, tuncer:mtu(Dev)),
    ?assertMatch({ok, _, <<"ct-link0">>}, tuncer:mtu(Dev, 1400)),
    ?assertEqual({ok, 1400}, tuncer:mtu(Dev)),
    ?assertMatch({match, _}, re:run(ip("-o link show ct-link0"), "mtu 1400")),
    ok = tuncer:up(Dev, "198.18.9.1"),
    Addr = ip("-o -4 addr show dev ct-link0"),
    % a TUN link is point-to-point: no broadcast address (SIOCSIFADDR)
    ?assertMatch({match, _}, re:run(Addr, "inet 198.18.9.1/32 scope")),
    ?assertMatch({match, _}, re:run(ip("-o link show ct-link0"), "[<,]UP[,>]")),
    ok = tuncer:broadcast(Dev, "198.18.9.127"),
    ?assertMatch({match, _}, re:run(ip("-o -4 addr show dev ct-link0"), "brd 198.18.9.127")),
    ok = tuncer:dstaddr(Dev, {198, 18, 9, 2}),
    ?assertMatch({match, _}, re:run(ip("-o -4 addr show dev ct-link0"), "inet 198.18.9.1 peer 198.18.9.2/32")),
    ok = tuncer:down(Dev),
    ?assertEqual(nomatch, re:run(ip("-o link show ct-link0"), "[<,]UP[,>]")),
    {ok, Dev2} = tuncer:create(<<"ct-link1">>, [tun, no_pi]),
    ?assertEqual({error, eaddrnotavail}, tuncer:dstaddr(Dev2, "198.18.9.3")),
    ok = tuncer:destroy(Dev2),
    ok = tuncer:destroy(Dev).

persist_owner_group(_Config) ->
    {ok, Dev} = tuncer:create(<<"ct-pers0">>, [tap, no_pi]),
    ok = tuncer:owner(Dev, 4321),
    ok = tuncer:group(Dev, 4322),
    ok = tuncer:persist(Dev, true),
    Details = ip("-d link show ct-pers0"),
    ?assertMatch({match, _}, re:run(Details, "persist on user 4321 group 4322")),
    ok = tuncer:destroy(Dev),
    ?assert(exists("ct-pers0")),
    % Owned by another uid: root may attach all the same (the ownership
    % rule, doc/security.md); other users get eperm (unpriv_check, and
    % test/privilege_test.go).
    {ok, Attached} = tuncer:create(<<"ct-pers0">>, [tap, no_pi]),
    ok = tuncer:destroy(Attached),
    ?assert(exists("ct-pers0")),
    _ = ip("link del ct-pers0"),
    ?assertNot(exists("ct-pers0")),
    % Owned by our own uid: reattach, make it transient again.
    Uid = list_to_integer(string:trim(os:cmd("id -u"))),
    {ok, Dev1} = tuncer:create(<<"ct-pers1">>, [tap, no_pi]),
    ok = tuncer:owner(Dev1, Uid),
    ok = tuncer:persist(Dev1, true),
    ok = tuncer:destroy(Dev1),
    ?assert(exists("ct-pers1")),
    {ok, Dev2} = tuncer:create(<<"ct-pers1">>, [tap, no_pi]),
    ok = tuncer:persist(Dev2, false),
    ok = tuncer:destroy(Dev2),
    ?assertNot(exists("ct-pers1")).

port_exit(_Config) ->
    process_flag(trap_exit, true),
    {ok, Dev} = tuncer:create(<<"ct-pexit0">>, [tun]),
    OsPid = tunctl_test_lib:port_os_pid(Dev),
    _ = os:cmd("kill -9 " ++ integer_to_list(OsPid)),
    receive
        {'EXIT', Dev, Reason} -> ?assertMatch({tunctl_port_exit, _}, Reason)
    after 5000 -> ct:fail(no_exit)
    end,
    ok = wait_gone("ct-pexit0", 1000),
    process_flag(trap_exit, false).

% The BEAM is killed with SIGKILL: the port program sees EOF on stdin and
% takes the devices with it.
sigkill(_Config) ->
    Paths = [filename:dirname(code:which(tuncer))],
    Erl = os:find_executable("erl"),
    Eval =
        "{ok, D} = tuncer:create(<<\"ct-kill0\">>, [tap, no_pi]),"
        "{links, L} = process_info(D, links), [P] = [X || X <- L, is_port(X)],"
        "{os_pid, Op} = erlang:port_info(P, os_pid),"
        "io:format(\"pids ~s ~w~n\", [os:getpid(), Op]),"
        "receive after infinity -> ok end.",
    Port = open_port({spawn_executable, Erl}, [
        {args, ["-noshell", "-pa" | Paths] ++ ["-eval", Eval]},
        {line, 1024},
        exit_status,
        stderr_to_stdout
    ]),
    {Beam, TunctlPort} = child_pids(Port),
    ?assert(exists("ct-kill0")),
    ?assert(alive(TunctlPort)),
    _ = os:cmd("kill -9 " ++ Beam),
    T0 = erlang:monotonic_time(millisecond),
    ok = wait_gone("ct-kill0", 1000),
    ok = wait_dead(TunctlPort, 1000),
    ct:pal("device and port gone ~p ms after SIGKILL", [erlang:monotonic_time(millisecond) - T0]).

tunctl_compat(_Config) ->
    {ok, FD, Name} = tunctl:create(<<"ct-compat0">>, [tap, no_pi]),
    ?assertEqual(<<"ct-compat0">>, Name),
    ?assert(is_integer(FD)),
    ok = tunctl:persist(FD, false),
    ok = tunctl:up(Name, {198, 18, 10, 1}),
    ?assertMatch({match, _}, re:run(ip("-o link show ct-compat0"), "[<,]UP[,>]")),
    ok = tunctl:down(<<"ct-compat0">>),
    ?assertEqual({error, enodev}, tunctl:down(<<"ct-nope">>)),
    % the kernel may have queued IPv6 noise (MLD, RS) while the link was up
    ?assertEqual({error, eagain}, read_all(FD)),
    ok = tunctl:close(FD),
    ?assertEqual({error, ebadf}, tunctl:persist(FD, true)),
    ?assertNot(exists("ct-compat0")).

%%--------------------------------------------------------------------
%%% Helpers
%%--------------------------------------------------------------------

child_pids(Port) ->
    receive
        {Port, {data, {eol, "pids " ++ Pids}}} ->
            [Beam, TunctlPort] = string:lexemes(Pids, " "),
            {Beam, TunctlPort};
        {Port, {data, {eol, Line}}} ->
            ct:pal("child: ~s", [Line]),
            child_pids(Port);
        {Port, {exit_status, Status}} ->
            ct:fail({child_exit, Status})
    after 10000 ->
        ct:fail(child_timeout)
    end.

% Read a handle until nothing is queued.
read_all(FD) ->
    case tuncer:read(FD) of
        {ok, _} -> read_all(FD);
        Other -> Other
    end.

% Passive read of the next UDP packet to DPort.
recv_udp(Dev, DPort) ->
    recv_until(Dev, fun(P) -> is_udp_to(P, DPort) end).

active_udp(Dev, DPort) ->
    active_match(Dev, fun(P) -> is_udp_to(P, DPort) end).

active_match(Dev, Match) ->
    tunctl_test_lib:active_match(Dev, Match, 2000).

poll(Fun) ->
    poll(Fun, 100).
poll(_Fun, 0) ->
    ct:fail(poll);
poll(Fun, N) ->
    case Fun() of
        {ok, Packet} ->
            Packet;
        {error, eagain} ->
            timer:sleep(20),
            poll(Fun, N - 1)
    end.

% Messages from Dev arriving within Ms.
quiet(Dev, Ms) ->
    receive
        {tuntap, Dev, _} = M -> [M | quiet(Dev, Ms)];
        {tuntap_passive, Dev} = M -> [M | quiet(Dev, Ms)];
        {tuntap_error, Dev, _} = M -> [M | quiet(Dev, Ms)]
    after Ms -> []
    end.

collect(Parent, Dev, Acc) ->
    receive
        {tuntap, Dev, Packet} ->
            case is_udp_to(Packet, 4242) of
                true -> collect(Parent, Dev, [seq(Packet) | Acc]);
                false -> collect(Parent, Dev, Acc)
            end;
        {done, Parent} ->
            % let in-flight packets land
            timer:sleep(200),
            collect_rest(Parent, Dev, Acc)
    end.

collect_rest(Parent, Dev, Acc) ->
    receive
        {tuntap, Dev, Packet} -> collect_rest(Parent, Dev, [seq(Packet) | Acc])
    after 0 ->
        Parent ! {collected, lists:reverse(Acc)},
        receive
            {give_back, Parent} ->
                ok = tuncer:controlling_process(Dev, Parent),
                Parent ! given_back,
                receive stop -> ok end;
            stop -> ok
        end
    end.

seq(Packet) ->
    {_, _, _, _, <<N:16>>} = parse_udp(Packet),
    N.

% Distinct datagrams until Count, or 2 s without any.
count_udp(Parent, _Sock, Count, Seen) when map_size(Seen) =:= Count ->
    Parent ! {seen, Seen};
count_udp(Parent, Sock, Count, Seen) ->
    receive
        {udp, Sock, _, _, Payload} -> count_udp(Parent, Sock, Count, Seen#{Payload => true})
    after 2000 -> Parent ! {seen, Seen}
    end.
