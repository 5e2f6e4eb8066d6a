%% @doc `make demo-reflector': inside a network namespace made for it,
%% create a TUN device through `tuncer', address it (IPv4 and IPv6), answer
%% ping and UDP with `reflector', print what was seen, and clean up.
-module(reflector_demo).

-export([main/0]).

-define(DEV, <<"tunctl-demo0">>).

-spec main() -> no_return().
main() ->
    Result = try run() catch C:R:St -> {error, {C, R, St}} end,
    case Result of
        ok -> halt(0);
        {error, Why} -> io:format("demo FAILED: ~p~n", [Why]), halt(1)
    end.

run() ->
    io:format("== tunctl reflector demo: tunctl_port at ~s~n", [port_program()]),
    {ok, R} = reflector:start(?DEV, [{{198,18,0,1}, 24}, {"2001:db8::1", 64}]),
    Dev = reflector:devname(R),
    io:format("created ~s; kernel view:~n~s", [Dev, os:cmd("ip -br addr show dev " ++ binary_to_list(Dev))]),
    io:format("~n== ping 198.18.0.2 (answered by the Erlang reflector)~n~s",
              [os:cmd("ping -n -c 3 -i 0.2 -W 2 198.18.0.2 2>&1")]),
    io:format("~n== ping 2001:db8::2~n~s", [os:cmd("ping -n -6 -c 3 -i 0.2 -W 2 2001:db8::2 2>&1")]),
    io:format("~n== UDP to 198.18.0.2:7 and [2001:db8::2]:7~n"),
    Udp4 = udp_echo(inet, {198,18,0,1}, {198,18,0,2}),
    Udp6 = udp_echo(inet6, {16#2001,16#db8,0,0,0,0,0,1}, {16#2001,16#db8,0,0,0,0,0,2}),
    io:format("IPv4: ~b of 5 datagrams came back intact; IPv6: ~b of 5~n", [Udp4, Udp6]),
    Stats = reflector:stats(R),
    io:format("~n== reflector saw: ~p~n", [Stats]),
    ok = reflector:stop(R),
    timer:sleep(100),
    Gone = os:cmd("ip -o link show dev " ++ binary_to_list(Dev) ++ " 2>&1"),
    io:format("after destroy: ~s", [Gone]),
    Ok = Udp4 =:= 5 andalso Udp6 =:= 5 andalso maps:get(icmp, Stats) >= 3
        andalso maps:get(icmp6, Stats) >= 3,
    case Ok of
        true -> io:format("~n== demo OK: packets reflected, device removed~n");
        false -> {error, {not_all_packets_reflected, Stats}}
    end.

udp_echo(Family, Local, Remote) ->
    {ok, S} = gen_udp:open(0, [Family, binary, {ip, Local}, {active, false}]),
    N = length([ok || I <- lists:seq(1, 5),
                      begin
                          Msg = <<"tunctl demo datagram ", (integer_to_binary(I))/binary>>,
                          ok = gen_udp:send(S, Remote, 7, Msg),
                          case gen_udp:recv(S, 0, 2000) of
                              {ok, {Remote, 7, Msg}} -> true;
                              _ -> false
                          end
                      end]),
    ok = gen_udp:close(S),
    N.

port_program() ->
    case application:get_env(tunctl, port_program) of
        {ok, P} -> P;
        undefined -> filename:join(code:priv_dir(tunctl), "tunctl_port")
    end.
