%% Runs inside a private network namespace (scripts/in-netns); 198.18.160.0/24.
-module(consumer_tests).
-include_lib("eunit/include/eunit.hrl").

device_moves_a_packet_test_() ->
    {timeout, 30, fun device_moves_a_packet/0}.

device_moves_a_packet() ->
    {ok, Dev} = tuncer:create(<<"rbcons0">>, [tun, no_pi, {active, true}]),
    ?assertEqual(<<"rbcons0">>, tuncer:devname(Dev)),
    ok = tuncer:up(Dev, {198, 18, 160, 1}, 24),
    {ok, S} = gen_udp:open(0, [binary, {ip, {198, 18, 160, 1}}, {active, false}]),
    ok = gen_udp:send(S, {198, 18, 160, 2}, 9, <<"from rebar3">>),
    % the kernel routes the datagram into the device: it reaches us
    Packet = udp_packet(Dev, 5000),
    ?assertNotEqual(nomatch, binary:match(Packet, <<"from rebar3">>)),
    % and a packet written to the device reaches the socket
    ok = tuncer:send(Dev, consumer:reflect(Packet)),
    ?assertMatch({ok, {{198, 18, 160, 2}, 9, <<"from rebar3">>}}, gen_udp:recv(S, 0, 5000)),
    ok = gen_udp:close(S),
    ok = tuncer:destroy(Dev).

% The first IPv4 UDP packet (IPv6 neighbour discovery may come first).
udp_packet(Dev, Timeout) ->
    receive
        {tuntap, Dev, <<4:4, _:68, 17, _/binary>> = Packet} -> Packet;
        {tuntap, Dev, _Other} -> udp_packet(Dev, Timeout)
    after Timeout ->
        error(no_packet)
    end.
