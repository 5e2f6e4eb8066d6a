%% @doc A two-namespace laboratory for `vpwn', used by `make demo' and by
%% `examples_SUITE'.
%%
%% Run from a node inside a private network namespace (`scripts/in-netns'):
%% `setup/1' creates two namespaces joined by a veth pair
%% (198.18.100.1/24 and 198.18.100.2/24), starts an `epmd' and an Erlang
%% node in each (`ip netns exec NS erl -name a@198.18.100.1 ...', driven from
%% here through `peer' over standard I/O, so this node needs no
%% distribution), and `teardown/1' stops every process it started, by PID,
%% and deletes the namespaces.
%%
%% ```
%% Lab = vpwn_lab:setup(#{}),
%% {ok, _} = vpwn_lab:tunnel(Lab, []),            % vpwn 198.18.200.1 <-> .2
%% #{received := 5} = vpwn_lab:ping(Lab, 5),
%% #{match := true} = vpwn_lab:transfer(Lab, 4 bsl 20),
%% ok = vpwn_lab:teardown(Lab).
%% '''
-module(vpwn_lab).

-export([setup/1, teardown/1, sweep/1, alive/1, tunnel/2, untunnel/1, ping/2, transfer/2, flood/3, stats/1,
         iperf/3]).
%% run on the lab's nodes
-export([hold/4, release/1, sink/2, sink_result/1, send_data/4, freeze/2, udp_sink/2, udp_count/1,
         udp_flood/5, wait_listen/2]).

-define(UNDER_A, {198, 18, 100, 1}).
-define(UNDER_B, {198, 18, 100, 2}).
-define(TUN_A, {198, 18, 200, 1}).
-define(TUN_B, {198, 18, 200, 2}).
-define(TCP_PORT, 5001).
-define(UDP_PORT, 5002).
-define(IPERF_PORT, 5201).

-type lab() :: #{atom() => term()}.

%%--------------------------------------------------------------------
%%% Controller side
%%--------------------------------------------------------------------

%% @doc Create the namespaces, the veth pair, the epmds and the two nodes.
%% On any failure what was created is removed and the error raised.
-spec setup(map()) -> lab().
setup(Opts) ->
    Id = integer_to_list(maps:get(id, Opts, erlang:unique_integer([positive]) rem 100000)),
    NsA = "vpA" ++ Id,
    NsB = "vpB" ++ Id,
    Lab0 = #{ns => [], epmd => [], peers => [], ospids => []},
    Steps = [
        fun(L) -> netns(L, NsA) end,
        fun(L) -> netns(L, NsB) end,
        fun(L) -> veth(L, NsA, NsB, "vpa" ++ Id, "vpb" ++ Id) end,
        fun(L) -> epmd(L, NsA) end,
        fun(L) -> epmd(L, NsB) end,
        fun(L) -> node(L, a, NsA, "a", ?UNDER_A) end,
        fun(L) -> node(L, b, NsB, "b", ?UNDER_B) end
    ],
    lists:foldl(
        fun(Step, L) ->
            try
                Step(L)
            catch
                C:R:St ->
                    _ = teardown(L),
                    erlang:raise(C, R, St)
            end
        end,
        Lab0#{ns_a => NsA, ns_b => NsB},
        Steps
    ).

%% @doc Stop the nodes and the epmds (by PID) and delete the namespaces.
-spec teardown(lab()) -> ok.
teardown(Lab) ->
    _ = (catch untunnel(Lab)),
    [catch peer:stop(P) || P <- maps:get(peers, Lab)],
    [kill(OsPid) || OsPid <- maps:get(ospids, Lab)],
    [
        begin
            kill(OsPid),
            catch port_close(Port)
        end
     || {Port, OsPid} <- maps:get(epmd, Lab)
    ],
    [sh("ip netns del " ++ Ns) || Ns <- maps:get(ns, Lab)],
    ok.

%% @doc Start `vpwn' between the two nodes, from node a: a's device gets
%% 198.18.200.1, b's 198.18.200.2. `Opts' are `vpwn:start/4''s.
-spec tunnel(lab(), [vpwn:option()]) -> {ok, lab()}.
tunnel(#{a := A, node_b := NodeB} = Lab, Opts) ->
    {ok, Holder, Tunnel} = peer:call(A, ?MODULE, hold, [NodeB, ?TUN_A, ?TUN_B, Opts], 30000),
    {ok, Lab#{holder => Holder, tunnel => Tunnel}}.

%% @doc Kill every process in the namespaces (of this mount namespace's
%% `/run/netns') whose name starts with one of `Prefixes', and delete them:
%% the backstop after a run that could not tear down (a timeout, a crash).
-spec sweep([string()]) -> ok.
sweep(Prefixes) ->
    Names = [hd(string:lexemes(L, " ")) || L <- string:lexemes(os:cmd("ip netns list"), "\n")],
    Ours = [N || N <- Names, lists:any(fun(P) -> lists:prefix(P, N) end, Prefixes)],
    [
        begin
            [kill(P) || P <- string:lexemes(os:cmd("ip netns pids " ++ N), "\n")],
            sh("ip netns del " ++ N)
        end
     || N <- Ours
    ],
    ok.

%% @doc Take the tunnel down.
-spec untunnel(lab()) -> ok.
untunnel(#{a := A, holder := Holder}) ->
    peer:call(A, ?MODULE, release, [Holder], 15000);
untunnel(_) ->
    ok.

%% @doc The `vpwn:stats/1' of both ends: `#{a => Stats, b => Stats}'.
-spec stats(lab()) -> #{a | b => map()}.
stats(#{a := A, b := B, tunnel := Tunnel}) ->
    SA = peer:call(A, vpwn, stats, [Tunnel]),
    SB = peer:call(B, vpwn, stats, [maps:get(peer, SA)]),
    #{a => SA, b => SB}.

%% @doc Ping 198.18.200.2 from namespace a, through the tunnel.
-spec ping(lab(), pos_integer()) -> #{atom() => term()}.
ping(#{a := A}, Count) ->
    Cmd = lists:flatten(io_lib:format("ping -n -c ~b -i 0.2 -W 2 -w 10 ~s 2>&1", [Count, ntoa(?TUN_B)])),
    Out = peer:call(A, os, cmd, [Cmd], 5000 + Count * 2500),
    Stats =
        case re:run(Out, "(\\d+) packets transmitted, (\\d+) received", [{capture, all_but_first, list}]) of
            {match, [Tx, Rx]} -> #{sent => list_to_integer(Tx), received => list_to_integer(Rx)};
            nomatch -> #{sent => Count, received => 0}
        end,
    Rtt =
        case re:run(Out, "= ([0-9.]+)/([0-9.]+)/([0-9.]+)/", [{capture, all_but_first, list}]) of
            {match, [Min, Avg, Max]} -> #{rtt_ms => {to_float(Min), to_float(Avg), to_float(Max)}};
            nomatch -> #{}
        end,
    maps:merge(Stats#{output => Out}, Rtt).

%% @doc Send `Bytes' random bytes over TCP from node a (198.18.200.1) to a
%% listener in node b (198.18.200.2), through the tunnel, and compare the
%% SHA-256 of what was sent and what was received.
-spec transfer(lab(), pos_integer()) -> #{atom() => term()}.
transfer(#{a := A, b := B}, Bytes) ->
    ok = peer:call(B, ?MODULE, sink, [?TUN_B, ?TCP_PORT]),
    {ok, Sent, Micros} = peer:call(A, ?MODULE, send_data, [?TUN_A, ?TUN_B, ?TCP_PORT, Bytes], 60000),
    {ok, Received, RBytes} = peer:call(B, ?MODULE, sink_result, [10000], 15000),
    #{
        bytes => Bytes,
        received_bytes => RBytes,
        seconds => Micros / 1.0e6,
        mib_per_s => Bytes / 1048576 / max(Micros / 1.0e6, 1.0e-6),
        sha256_sent => Sent,
        sha256_received => Received,
        match => Sent =:= Received andalso RBytes =:= Bytes
    }.

%% @doc Run iperf3 (TCP, `Secs' seconds) from node a to a one-off iperf3
%% server in node b: through the tunnel (`tunnel', 198.18.200.1 to .2) or
%% over the bare veth (`veth', 198.18.100.1 to .2). Returns the receiver's
%% throughput in Mbit/s, or `{error, Output}'. Both iperf3 processes are
%% bounded: the server serves one test (`-1') and is killed by PID if it is
%% still there afterwards.
-spec iperf(lab(), tunnel | veth, pos_integer()) -> {ok, float()} | {error, term()}.
iperf(#{a := A, b := B, ns_b := NsB}, Path, Secs) ->
    {From, To} =
        case Path of
            tunnel -> {?TUN_A, ?TUN_B};
            veth -> {?UNDER_A, ?UNDER_B}
        end,
    Pidfile = "/tmp/vpwn_lab_iperf3." ++ NsB ++ ".pid",
    _ = peer:call(B, os, cmd, [lists:flatten(io_lib:format("iperf3 -s -1 -D -B ~s -p ~b --pidfile ~s",
                                                             [ntoa(To), ?IPERF_PORT, Pidfile]))]),
    ok = peer:call(B, ?MODULE, wait_listen, [?IPERF_PORT, 5000]),
    Cmd = lists:flatten(io_lib:format("timeout ~b iperf3 -c ~s -B ~s -p ~b -t ~b -f m 2>&1",
                                      [Secs + 20, ntoa(To), ntoa(From), ?IPERF_PORT, Secs])),
    Out = peer:call(A, os, cmd, [Cmd], (Secs + 30) * 1000),
    _ = os:cmd("kill $(cat " ++ Pidfile ++ ") 2>/dev/null; rm -f " ++ Pidfile),
    case re:run(Out, "([0-9.]+) Mbits/sec.*receiver", [{capture, all_but_first, list}]) of
        {match, [Mbps]} -> {ok, to_float(Mbps)};
        nomatch -> {error, Out}
    end.

%% @private Wait until something listens on TCP port `Port' here.
wait_listen(Port, Ms) ->
    Hex = lists:flatten(io_lib:format(":~4.16.0B ", [Port])),
    wait(fun() ->
        {ok, Tcp} = file:read_file("/proc/net/tcp"),
        binary:match(Tcp, list_to_binary(Hex)) =/= nomatch
    end, Ms).

%% @doc Suspend b's end of the tunnel for `Ms' milliseconds while node a
%% sends `Count' UDP datagrams through the tunnel as fast as it can; report
%% the longest mailbox b's end had meanwhile, and how many datagrams
%% reached b once it was resumed.
-spec flood(lab(), pos_integer(), pos_integer()) -> #{atom() => term()}.
flood(#{a := A, b := B} = Lab, Count, Ms) ->
    #{a := #{peer := EndB}} = stats(Lab),
    ok = peer:call(B, ?MODULE, udp_sink, [?TUN_B, ?UDP_PORT]),
    Self = self(),
    Freezer = spawn_link(fun() -> Self ! {self(), peer:call(B, ?MODULE, freeze, [EndB, Ms], Ms + 10000)} end),
    timer:sleep(200),
    {ok, Sent} = peer:call(A, ?MODULE, udp_flood, [?TUN_A, ?TUN_B, ?UDP_PORT, Count, 512], 30000),
    MaxQueue =
        receive
            {Freezer, {ok, Q}} -> Q
        after Ms + 15000 -> error(freeze_timeout)
        end,
    timer:sleep(500),
    Delivered = peer:call(B, ?MODULE, udp_count, [2000], 20000),
    #{sent => Sent, max_queue => MaxQueue, delivered => Delivered}.

netns(#{ns := Ns} = L, Name) ->
    ok = sh("ip netns add " ++ Name),
    ok = sh("ip -n " ++ Name ++ " link set lo up"),
    L#{ns := [Name | Ns]}.

veth(L, NsA, NsB, IfA, IfB) ->
    ok = sh(io_lib:format("ip link add ~s netns ~s type veth peer name ~s netns ~s", [IfA, NsA, IfB, NsB])),
    ok = sh(io_lib:format("ip -n ~s addr add ~s/24 dev ~s", [NsA, ntoa(?UNDER_A), IfA])),
    ok = sh(io_lib:format("ip -n ~s addr add ~s/24 dev ~s", [NsB, ntoa(?UNDER_B), IfB])),
    ok = sh(io_lib:format("ip -n ~s link set ~s up", [NsA, IfA])),
    ok = sh(io_lib:format("ip -n ~s link set ~s up", [NsB, IfB])),
    L.

% epmd in the foreground; `ip netns exec' execs it, so the port's OS pid is
% epmd's.
epmd(#{epmd := Epmds} = L, Ns) ->
    Port = open_port({spawn_executable, os:find_executable("ip")}, [
        {args, ["netns", "exec", Ns, os:find_executable("epmd")]}, nouse_stdio
    ]),
    {os_pid, OsPid} = erlang:port_info(Port, os_pid),
    L1 = L#{epmd := [{Port, OsPid} | Epmds]},
    ok = wait(fun() -> sh("ip netns exec " ++ Ns ++ " epmd -names") =:= ok end, 5000),
    L1.

node(#{peers := Peers, ospids := OsPids} = L, Key, Ns, Name, Addr) ->
    Cookie = maps:get(cookie, L, cookie()),
    Dirs = lists:usort([filename:absname(filename:dirname(code:which(M))) || M <- [tuncer, vpwn, ?MODULE]]),
    PortProgram =
        case application:get_env(tunctl, port_program) of
            {ok, P} -> ["-tunctl", "port_program", lists:flatten(io_lib:format("~p", [P]))];
            undefined -> []
        end,
    {ok, Peer, Node} = peer:start_link(#{
        name => Name,
        host => ntoa(Addr),
        longnames => true,
        connection => standard_io,
        exec => {os:find_executable("ip"), ["netns", "exec", Ns, os:find_executable("erl")]},
        args => ["-setcookie", Cookie, "-start_epmd", "false", "-pa" | Dirs] ++ PortProgram
    }),
    OsPid = peer:call(Peer, os, getpid, []),
    L#{Key => Peer, list_to_atom("node_" ++ atom_to_list(Key)) => Node, cookie => Cookie,
       peers := [Peer | Peers], ospids := [OsPid | OsPids]}.

cookie() ->
    "vpwnlab" ++ integer_to_list(erlang:unique_integer([positive])) ++ integer_to_list(rand:uniform(1 bsl 40)).

kill(OsPid) when is_integer(OsPid) ->
    kill(integer_to_list(OsPid));
kill(OsPid) ->
    case alive(OsPid) of
        true ->
            _ = os:cmd("kill -TERM " ++ OsPid),
            case wait(fun() -> not alive(OsPid) end, 3000) of
                ok -> ok;
                timeout -> _ = os:cmd("kill -KILL " ++ OsPid), ok
            end;
        false ->
            ok
    end.

%% @doc Whether an OS process is alive (a zombie is not).
-spec alive(integer() | string()) -> boolean().
alive(OsPid) when is_integer(OsPid) ->
    alive(integer_to_list(OsPid));
alive(OsPid) ->
    case file:read_file("/proc/" ++ OsPid ++ "/stat") of
        {ok, Stat} ->
            % a zombie is dead
            case re:run(Stat, "\\) Z ") of
                {match, _} -> false;
                nomatch -> true
            end;
        {error, _} ->
            false
    end.

%%--------------------------------------------------------------------
%%% On the lab's nodes
%%--------------------------------------------------------------------

%% @private A process that owns the tunnel (peer:call's caller does not
%% live long).
hold(Node, Local, Remote, Opts) ->
    Self = self(),
    Holder = spawn(fun() ->
        case vpwn:start(Node, Local, Remote, Opts) of
            {ok, Tunnel} ->
                Self ! {self(), {ok, Tunnel}},
                receive
                    {release, From} ->
                        ok = vpwn:stop(Tunnel),
                        From ! {self(), released}
                end;
            Error ->
                Self ! {self(), Error}
        end
    end),
    receive
        {Holder, {ok, Tunnel}} -> {ok, Holder, Tunnel};
        {Holder, Error} -> Error
    after 40000 -> {error, timeout}
    end.

%% @private
release(Holder) ->
    Holder ! {release, self()},
    receive
        {Holder, released} -> ok
    after 10000 -> {error, timeout}
    end.

%% @private A TCP listener that hashes one connection's bytes.
sink(Addr, Port) ->
    Self = self(),
    Pid = spawn(fun() ->
        {ok, L} = gen_tcp:listen(Port, [binary, {ip, Addr}, {active, false}, {reuseaddr, true}]),
        Self ! {self(), listening},
        Result =
            case gen_tcp:accept(L, 20000) of
                {ok, S} ->
                    R = drain(S, crypto:hash_init(sha256), 0),
                    ok = gen_tcp:close(S),
                    R;
                Error ->
                    Error
            end,
        ok = gen_tcp:close(L),
        receive
            {result, From} -> From ! {self(), Result}
        after 60000 -> ok
        end
    end),
    receive
        {Pid, listening} ->
            register(vpwn_lab_sink, Pid),
            ok
    after 5000 -> {error, timeout}
    end.

drain(S, Hash, N) ->
    case gen_tcp:recv(S, 0, 20000) of
        {ok, Data} -> drain(S, crypto:hash_update(Hash, Data), N + byte_size(Data));
        {error, closed} -> {ok, crypto:hash_final(Hash), N};
        {error, _} = Error -> Error
    end.

%% @private
sink_result(Timeout) ->
    Pid = whereis(vpwn_lab_sink),
    Ref = monitor(process, Pid),
    Pid ! {result, self()},
    receive
        {Pid, Result} -> demonitor(Ref, [flush]), Result;
        {'DOWN', Ref, process, Pid, Reason} -> {error, Reason}
    after Timeout -> {error, timeout}
    end.

%% @private Send Bytes random bytes, then wait for the receiver to close.
send_data(Local, Remote, Port, Bytes) ->
    Data = crypto:strong_rand_bytes(Bytes),
    T0 = erlang:monotonic_time(microsecond),
    {ok, S} = gen_tcp:connect(Remote, Port, [binary, {ip, Local}, {active, false}], 5000),
    ok = send_chunks(S, Data),
    ok = gen_tcp:shutdown(S, write),
    {error, closed} = gen_tcp:recv(S, 0, 30000),
    T1 = erlang:monotonic_time(microsecond),
    ok = gen_tcp:close(S),
    {ok, crypto:hash(sha256, Data), T1 - T0}.

send_chunks(_S, <<>>) ->
    ok;
send_chunks(S, <<Chunk:65536/binary, Rest/binary>>) ->
    ok = gen_tcp:send(S, Chunk),
    send_chunks(S, Rest);
send_chunks(S, Last) ->
    gen_tcp:send(S, Last).

%% @private Suspend Pid for Ms milliseconds, sampling its mailbox; return
%% the longest it got.
freeze(Pid, Ms) ->
    true = erlang:suspend_process(Pid),
    Deadline = erlang:monotonic_time(millisecond) + Ms,
    Max = sample(Pid, Deadline, 0),
    true = erlang:resume_process(Pid),
    {ok, Max}.

sample(Pid, Deadline, Max) ->
    {message_queue_len, Len} = process_info(Pid, message_queue_len),
    case erlang:monotonic_time(millisecond) >= Deadline of
        true ->
            max(Len, Max);
        false ->
            timer:sleep(10),
            sample(Pid, Deadline, max(Len, Max))
    end.

%% @private A UDP socket that counts datagrams (udp_count/1).
udp_sink(Addr, Port) ->
    Self = self(),
    Pid = spawn(fun() ->
        {ok, S} = gen_udp:open(Port, [binary, {ip, Addr}, {active, false}, {recbuf, 4 bsl 20}]),
        Self ! {self(), open},
        receive
            {count, From, Timeout} -> From ! {self(), count(S, Timeout, 0)}
        after 120000 -> ok
        end,
        gen_udp:close(S)
    end),
    receive
        {Pid, open} -> register(vpwn_lab_udp, Pid), ok
    after 5000 -> {error, timeout}
    end.

count(S, Timeout, N) ->
    case gen_udp:recv(S, 0, Timeout) of
        {ok, _} -> count(S, 200, N + 1);
        {error, timeout} -> N
    end.

%% @private
udp_count(Timeout) ->
    Pid = whereis(vpwn_lab_udp),
    Pid ! {count, self(), Timeout},
    receive
        {Pid, N} -> N
    after Timeout + 15000 -> {error, timeout}
    end.

%% @private Send Count datagrams of Size bytes as fast as possible.
udp_flood(Local, Remote, Port, Count, Size) ->
    {ok, S} = gen_udp:open(0, [binary, {ip, Local}, {active, false}, {sndbuf, 4 bsl 20}]),
    Payload = binary:copy(<<"v">>, Size),
    Sent = length([ok || _ <- lists:seq(1, Count), gen_udp:send(S, Remote, Port, Payload) =:= ok]),
    ok = gen_udp:close(S),
    {ok, Sent}.

%%--------------------------------------------------------------------
%%% Helpers
%%--------------------------------------------------------------------

sh(Cmd) ->
    Flat = lists:flatten(Cmd),
    case os:cmd(Flat ++ " >/dev/null 2>&1; echo $?") of
        "0\n" -> ok;
        Other -> {error, {Flat, string:trim(Other)}}
    end.

wait(Done, Ms) ->
    Deadline = erlang:monotonic_time(millisecond) + Ms,
    wait_until(Done, Deadline).

wait_until(Done, Deadline) ->
    case Done() of
        true ->
            ok;
        false ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> timeout;
                false -> timer:sleep(20), wait_until(Done, Deadline)
            end
    end.

ntoa(Addr) -> inet:ntoa(Addr).

to_float(S) ->
    case string:to_float(S) of
        {F, _} when is_float(F) -> F;
        {error, _} -> float(list_to_integer(S))
    end.
