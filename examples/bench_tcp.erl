%% @doc The TCP case of `make bench' (scripts/bench.sh): iperf3 between two
%% network namespaces (`vpwn_lab'), over the bare veth pair and through the
%% `vpwn' tunnel (TUN devices at MTU 1500, over Erlang distribution on that
%% veth), once per packet (`[{offload, false}, {deliver, packet}]', the
%% tunnel as msantos/tunctl's example runs it) and once with offloads and
%% batches (`vpwn''s default when both ends support them), in that order, in
%% one run.
%%
%% ```
%% erl -noshell -pa erlang/_build/default/lib/tunctl/ebin -pa examples/ebin \
%%     -run bench_tcp main 4
%% '''
%% prints one line per case, `tcp NAME mbps=M', and halts. Run it only
%% inside a private network namespace (scripts/in-netns).
-module(bench_tcp).

-export([main/1]).

-spec main([string()]) -> no_return().
main([SecsStr]) ->
    Secs = list_to_integer(SecsStr),
    Lab = vpwn_lab:setup(#{}),
    Rc =
        try
            report(veth, vpwn_lab:iperf(Lab, veth, Secs)),
            lists:foreach(
                fun({Name, Opts}) ->
                    {ok, L} = vpwn_lab:tunnel(Lab, Opts),
                    report(Name, vpwn_lab:iperf(L, tunnel, Secs)),
                    report_stats(Name, vpwn_lab:stats(L)),
                    ok = vpwn_lab:untunnel(L)
                end,
                [{vpwn_packet, [{offload, false}, {deliver, packet}]}, {vpwn_offload, []}]
            ),
            0
        catch
            C:R:St ->
                io:format("bench_tcp: ~p:~p ~p~n", [C, R, St]),
                1
        after
            vpwn_lab:teardown(Lab)
        end,
    halt(Rc).

report(Name, {ok, Mbps}) ->
    io:format("tcp ~s mbps=~.1f~n", [Name, Mbps]);
report(Name, {error, Out}) ->
    io:format("tcp ~s failed: ~s~n", [Name, Out]).

report_stats(Name, #{a := A}) ->
    io:format("   ~s: a's end ~p~n", [Name, maps:with([to_peer, from_peer, mode, offload, deliver], A)]).
