%% @doc `make demo': a VPN over Erlang distribution (`vpwn') between two
%% Erlang nodes in two network namespaces, set up by `vpwn_lab' inside the
%% private namespace `scripts/in-netns' made for the demo. Pings through the
%% tunnel, moves a few MiB over TCP through it and checks their SHA-256,
%% shows `{active, N}' flow control at work, prints a summary and removes
%% everything it created.
-module(tunctl_demo).

-export([main/0]).

-define(MIB, 8).
-define(WINDOW, 64).

-spec main() -> no_return().
main() ->
    T0 = erlang:monotonic_time(millisecond),
    Result =
        try
            run()
        catch
            C:R:St -> {error, {C, R, St}}
        end,
    Secs = (erlang:monotonic_time(millisecond) - T0) / 1000,
    case Result of
        ok ->
            io:format("~n== demo OK in ~.1f s: ping and transfer through the tunnel, everything removed~n", [Secs]),
            halt(0);
        {error, Why} ->
            io:format("~n== demo FAILED after ~.1f s: ~p~n", [Secs, Why]),
            halt(1)
    end.

run() ->
    io:format("== tunctl demo: a VPN over Erlang distribution (examples/vpwn.erl)~n"),
    io:format("   tunctl_port: ~s~n", [filename:absname(port_program())]),
    Lab = vpwn_lab:setup(#{}),
    try
        demo(Lab)
    after
        cleanup(Lab)
    end.

demo(#{ns_a := NsA, ns_b := NsB, node_a := NodeA, node_b := NodeB} = Lab0) ->
    io:format("~n== two namespaces joined by a veth pair, epmd and one Erlang node in each~n"),
    io:format("   ~s: ~s    <-- veth -->    ~s: ~s~n", [NsA, NodeA, NsB, NodeB]),

    io:format("~n== on ~s: vpwn:start('~s', \"198.18.200.1\", \"198.18.200.2\")~n", [NodeA, NodeB]),
    {ok, Lab} = vpwn_lab:tunnel(Lab0, []),
    #{a := #{devname := DevA}, b := #{devname := DevB}} = vpwn_lab:stats(Lab),
    io:format("   ~s ~s", [NsA, addr(Lab, a, DevA)]),
    io:format("   ~s ~s", [NsB, addr(Lab, b, DevB)]),

    io:format("~n== ping 198.18.200.2 from ~s: ICMP through the tunnel, carried as Erlang messages~n", [NsA]),
    Ping = vpwn_lab:ping(Lab, 5),
    io:format("   ~b sent, ~b received~s~n", [maps:get(sent, Ping), maps:get(received, Ping), rtt(Ping)]),

    io:format("~n== TCP through the tunnel: ~b MiB from 198.18.200.1 (~s) to 198.18.200.2:5001 (~s)~n",
              [?MIB, NsA, NsB]),
    T = vpwn_lab:transfer(Lab, ?MIB bsl 20),
    io:format("   ~b bytes received in ~.2f s: ~.1f MiB/s~n",
              [maps:get(received_bytes, T), maps:get(seconds, T), maps:get(mib_per_s, T)]),
    io:format("   sha256 sent     ~s~n   sha256 received ~s~n   checksum: ~s~n",
              [hex(maps:get(sha256_sent, T)), hex(maps:get(sha256_received, T)),
               case maps:get(match, T) of true -> "match"; false -> "MISMATCH" end]),
    #{a := SA, b := SB} = vpwn_lab:stats(Lab),
    io:format("   tunnel counters: a->b ~b packets, b->a ~b packets, errors ~b~n",
              [maps:get(to_peer, SA), maps:get(to_peer, SB), maps:get(errors, SA) + maps:get(errors, SB)]),
    io:format("   offloads ~p, delivery ~p: the largest packet a read was ~b bytes (MTU 1500; GSO super-packets)~n",
              [maps:get(offload, SA), maps:get(deliver, SA), maps:get(max_packet, SA)]),

    io:format("~n== flow control: b's vpwn process suspended for 1 s while ~s sends 2000 UDP datagrams~n", [NsA]),
    Plain = vpwn_lab:flood(Lab, 2000, 1000),
    ok = vpwn_lab:untunnel(Lab),
    {ok, LabN} = vpwn_lab:tunnel(Lab, [{active, ?WINDOW}]),
    Flow = vpwn_lab:flood(LabN, 2000, 1000),
    io:format("   {active, true}: b's mailbox grew to ~b messages~n", [maps:get(max_queue, Plain)]),
    io:format("   {active, ~b}:   b's mailbox peaked at ~b messages (a's device went passive, "
              "the rest waited in a's kernel queue)~n", [?WINDOW, maps:get(max_queue, Flow)]),
    PingN = vpwn_lab:ping(LabN, 3),
    io:format("   after the burst, ping through the flow-controlled tunnel: ~b/~b~n",
              [maps:get(received, PingN), maps:get(sent, PingN)]),
    ok = vpwn_lab:untunnel(LabN),

    Ok = maps:get(received, Ping) =:= 5 andalso maps:get(match, T) andalso
        maps:get(max_queue, Flow) =< ?WINDOW andalso maps:get(received, PingN) =:= 3,
    case Ok of
        true -> ok;
        false -> {error, {ping, maps:remove(output, Ping), transfer, maps:get(match, T), flow, Flow}}
    end.

cleanup(#{ospids := Nodes, epmd := Epmds} = Lab) ->
    io:format("~n== cleanup~n"),
    ok = vpwn_lab:teardown(Lab),
    Alive = [P || P <- Nodes ++ [E || {_, E} <- Epmds], vpwn_lab:alive(P)],
    io:format("   nodes stopped (OS pids ~s), epmd stopped (OS pids ~s)~n",
              [join([str(P) || P <- Nodes]), join([str(E) || {_, E} <- Epmds])]),
    io:format("   namespaces left: ~s~n", [case string:trim(os:cmd("ip netns list")) of "" -> "none"; L -> L end]),
    case Alive of
        [] -> ok;
        _ -> error({still_running, Alive})
    end.

addr(#{a := A, b := B}, Which, Dev) ->
    Peer = case Which of a -> A; b -> B end,
    peer:call(Peer, os, cmd, ["ip -br addr show dev " ++ binary_to_list(Dev)]).

rtt(#{rtt_ms := {Min, Avg, Max}}) ->
    io_lib:format("; rtt min/avg/max ~.3f/~.3f/~.3f ms", [Min, Avg, Max]);
rtt(_) ->
    "".

hex(Bin) -> [io_lib:format("~2.16.0b", [B]) || <<B>> <= Bin].

join(L) -> lists:join(", ", L).

str(I) when is_integer(I) -> integer_to_list(I);
str(S) -> S.

port_program() ->
    case application:get_env(tunctl, port_program) of
        {ok, P} -> P;
        undefined -> filename:join(code:priv_dir(tunctl), "tunctl_port")
    end.
