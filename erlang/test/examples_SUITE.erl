%% The examples (examples/*.erl, compiled by `make examples') moving real
%% traffic: reflector, br (a learning bridge between three namespaces), vpwn
%% (a tunnel between two Erlang nodes in two namespaces, plain and with
%% {active, N} flow control).
%%
%% Needs CAP_NET_ADMIN and a private network namespace (`make ct' runs the
%% suites inside scripts/in-netns); every namespace it creates is created
%% and deleted there. Addresses: 198.18.0.0/15 only.
-module(examples_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2, end_per_testcase/2]).
-export([reflector/1, br_learning/1, vpwn/1, vpwn_active_n/1, vpwn_offload/1]).

-define(WINDOW, 64).

suite() ->
    [{timetrap, {seconds, 90}}].

all() ->
    [reflector, br_learning, vpwn, vpwn_active_n, vpwn_offload].

init_per_suite(Config) ->
    case tunctl_test_lib:init_suite(Config) of
        {skip, _} = Skip ->
            Skip;
        Config1 ->
            Ebin = filename:join(root(), "examples/ebin"),
            true = code:add_patha(Ebin),
            Missing = [M || M <- [reflector, br, vpwn, vpwn_lab], code:ensure_loaded(M) =/= {module, M}],
            % `make ct' builds the examples first: a missing one is a failure
            ?assertEqual([], Missing, {"examples not compiled (make examples)", Ebin}),
            Config1
    end.

end_per_suite(_Config) ->
    ok.

init_per_testcase(_Case, Config) ->
    Config.

end_per_testcase(_Case, _Config) ->
    % Whatever a failed or timed-out case left behind: the namespaces this
    % suite and vpwn_lab create, and the processes (epmd, nodes) in them.
    ok = vpwn_lab:sweep(["exbr", "vpA", "vpB"]).

%%--------------------------------------------------------------------
%%% Tests
%%--------------------------------------------------------------------

%% reflector answers ping and UDP sent through its TUN device.
reflector(_Config) ->
    {ok, R} = reflector:start(<<"exrefl0">>, [{{198, 18, 130, 1}, 24}]),
    Ping = os:cmd("ping -n -c 3 -i 0.2 -W 2 -w 10 198.18.130.2 2>&1"),
    ct:pal("~s", [Ping]),
    ?assertMatch({match, _}, re:run(Ping, " 3 received")),
    {ok, S} = gen_udp:open(0, [binary, {ip, {198, 18, 130, 1}}, {active, false}]),
    Echoed = [
        begin
            Msg = <<"datagram ", (integer_to_binary(I))/binary>>,
            ok = gen_udp:send(S, {198, 18, 130, 2}, 7, Msg),
            {ok, {{198, 18, 130, 2}, 7, Reply}} = gen_udp:recv(S, 0, 2000),
            Reply =:= Msg
        end
     || I <- lists:seq(1, 5)
    ],
    ok = gen_udp:close(S),
    ?assertEqual(lists:duplicate(5, true), Echoed),
    #{icmp := Icmp, udp := Udp} = reflector:stats(R),
    ?assert(Icmp >= 3),
    ?assertEqual(5, Udp),
    ok = reflector:stop(R).

%% br bridges three TAP ports, each moved into its own namespace
%% (198.18.150.1-3/24): the namespaces ping each other, the bridge learns
%% one MAC per port, and unicast traffic between two ports is not flooded
%% to the third.
br_learning(_Config) ->
    Names = [<<"exbr0">>, <<"exbr1">>, <<"exbr2">>],
    {ok, Br} = br:start(Names),
    ?assertEqual(Names, br:ports(Br)),
    Id = integer_to_list(erlang:unique_integer([positive]) rem 100000),
    Ns = [
        begin
            N = "exbr" ++ integer_to_list(I) ++ "-" ++ Id,
            Dev = binary_to_list(lists:nth(I + 1, Names)),
            ok = sh("ip netns add " ++ N),
            ok = sh("ip -n " ++ N ++ " link set lo up"),
            % the tap keeps its fd (and its bridge port) in the new namespace
            ok = sh("ip link set " ++ Dev ++ " netns " ++ N),
            % no IPv6 chatter: the only traffic is what the test sends
            ok = sh("ip netns exec " ++ N ++ " sysctl -qw net.ipv6.conf." ++ Dev ++ ".disable_ipv6=1"),
            ok = sh("ip -n " ++ N ++ " addr add 198.18.150." ++ integer_to_list(I + 1) ++ "/24 dev " ++ Dev),
            ok = sh("ip -n " ++ N ++ " link set " ++ Dev ++ " up"),
            {N, Dev}
        end
     || I <- [0, 1, 2]
    ],
    [{Ns0, _}, {Ns1, _}, _] = Ns,
    ok = ping(Ns0, "198.18.150.2", 3),
    ok = ping(Ns0, "198.18.150.3", 3),
    ok = ping(Ns1, "198.18.150.3", 3),
    % one MAC per port, the one of the device behind it
    Macs = br:macs(Br),
    ct:pal("learned: ~p", [Macs]),
    [?assertEqual([mac(N, Dev)], maps:get(list_to_binary(Dev), Macs)) || {N, Dev} <- Ns],
    % all three have been learned: 0 <-> 1 is unicast, exbr2 sees none of it
    #{ports := #{<<"exbr2">> := #{tx := Tx2}}, forwarded := Fwd} = br:stats(Br),
    ok = ping(Ns0, "198.18.150.2", 5),
    #{ports := #{<<"exbr2">> := #{tx := Tx2After}}, forwarded := FwdAfter} = Stats = br:stats(Br),
    ct:pal("stats: ~p", [Stats]),
    ?assert(FwdAfter - Fwd >= 10),
    ?assert(Tx2After - Tx2 =< 1),
    ok = br:stop(Br),
    [ok = sh("ip netns del " ++ N) || {N, _} <- Ns],
    ok.

%% vpwn in {active, true} mode, packet by packet (msantos/tunctl's
%% example): ping and a 4 MiB TCP transfer through the tunnel between two
%% nodes in two namespaces; with the remote end suspended, a burst piles up
%% in its mailbox (no flow control).
vpwn(Config) ->
    with_lab(Config, [{offload, false}, {deliver, packet}], fun(Lab) ->
        traffic(Lab),
        #{max_queue := Q, sent := Sent} = Flood = vpwn_lab:flood(Lab, 2000, 1000),
        ct:pal("flood, no flow control: ~p", [Flood]),
        ?assertEqual(2000, Sent),
        ?assert(Q > 2 * ?WINDOW)
    end).

%% vpwn with its defaults (offloads and batches, both ends support them):
%% an 8 MiB TCP transfer at MTU 1500 with its SHA-256, carried in GSO
%% super-packets larger than the MTU, each with its virtio_net_hdr.
vpwn_offload(Config) ->
    with_lab(Config, [], fun(Lab) ->
        #{received := 3} = vpwn_lab:ping(Lab, 3),
        #{match := Match} = Transfer = vpwn_lab:transfer(Lab, 8 bsl 20),
        ct:pal("transfer: ~p", [Transfer]),
        ?assert(Match),
        #{a := A, b := B} = Stats = vpwn_lab:stats(Lab),
        ct:pal("~p", [Stats]),
        ?assertMatch(#{offload := true, deliver := batch}, A),
        ?assertMatch(#{offload := true, deliver := batch}, B),
        ?assert(maps:get(max_packet, A) > 1500),
        ?assertEqual(maps:get(to_peer, A), maps:get(from_peer, B)),
        ?assertEqual(0, maps:get(errors, A) + maps:get(errors, B))
    end).

%% vpwn in {active, N} mode (with batches and offloads): credit counts
%% packets; the same traffic, and with the remote end
%% suspended a burst never puts more than N packets in its mailbox; the
%% tunnel carries traffic again once the remote end resumes.
vpwn_active_n(Config) ->
    with_lab(Config, [{active, ?WINDOW}], fun(Lab) ->
        traffic(Lab),
        #{max_queue := Q, delivered := Delivered} = Flood = vpwn_lab:flood(Lab, 2000, 1000),
        ct:pal("flood, {active, ~b}: ~p", [?WINDOW, Flood]),
        ?assert(Q =< ?WINDOW),
        ?assert(Delivered >= ?WINDOW div 2),
        #{a := #{passive := Passive}} = Stats = vpwn_lab:stats(Lab),
        ct:pal("~p", [Stats]),
        ?assert(Passive >= 1),
        #{received := 3} = vpwn_lab:ping(Lab, 3),
        #{match := true} = vpwn_lab:transfer(Lab, 1 bsl 20)
    end).

%%--------------------------------------------------------------------
%%% Helpers
%%--------------------------------------------------------------------

with_lab(_Config, Opts, Fun) ->
    Lab = vpwn_lab:setup(#{}),
    try
        {ok, Lab1} = vpwn_lab:tunnel(Lab, Opts),
        Fun(Lab1)
    after
        ok = vpwn_lab:teardown(Lab)
    end.

traffic(Lab) ->
    #{received := Rx} = Ping = vpwn_lab:ping(Lab, 5),
    ct:pal("~s", [maps:get(output, Ping)]),
    ?assertEqual(5, Rx),
    #{match := Match} = Transfer = vpwn_lab:transfer(Lab, 4 bsl 20),
    ct:pal("transfer: ~p", [Transfer]),
    ?assert(Match),
    #{a := A, b := B} = vpwn_lab:stats(Lab),
    ?assertEqual(maps:get(to_peer, A), maps:get(from_peer, B)),
    ?assertEqual(0, maps:get(errors, A) + maps:get(errors, B)).

ping(Ns, Addr, Count) ->
    Out = os:cmd(
        lists:flatten(io_lib:format("ip netns exec ~s ping -n -c ~b -i 0.2 -W 2 -w 10 ~s 2>&1", [Ns, Count, Addr]))
    ),
    case re:run(Out, " " ++ integer_to_list(Count) ++ " received") of
        {match, _} -> ok;
        nomatch -> {error, {ping, Ns, Addr, Out}}
    end.

mac(Ns, Dev) ->
    Out = os:cmd("ip -n " ++ Ns ++ " -o link show dev " ++ Dev),
    {match, [Hex]} = re:run(Out, "link/ether ([0-9a-f:]{17})", [{capture, all_but_first, list}]),
    << <<(list_to_integer(H, 16))>> || H <- string:lexemes(Hex, ":") >>.

sh(Cmd) ->
    case os:cmd(Cmd ++ " >/dev/null 2>&1; echo $?") of
        "0\n" -> ok;
        Other -> {error, {Cmd, string:trim(Other)}}
    end.

% The repository: TUNCTL_ROOT, else from this file's source path
% (erlang/test/examples_SUITE.erl).
root() ->
    case os:getenv("TUNCTL_ROOT") of
        Dir when is_list(Dir), Dir =/= "" ->
            Dir;
        _ ->
            Source = proplists:get_value(source, ?MODULE:module_info(compile)),
            filename:dirname(filename:dirname(filename:dirname(Source)))
    end.
