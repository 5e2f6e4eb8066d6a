%% Opt-in batch delivery ({deliver, batch}), tuncer:sendv/2 and offloads
%% ({offload, [...]}, TUNSETOFFLOAD) on real TUN devices. Nothing here is
%% timed. Runs only inside a private network namespace (make ct);
%% addresses from 198.18.0.0/15.
-module(tuncer_batch_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([suite/0, all/0, init_per_suite/1, end_per_suite/1]).
-export([batch_delivery_and_credit/1, batch_options/1, sendv/1, sendv_large/1, sendv_errors/1,
         offload_flags/1]).

-import(tunctl_test_lib, [udp_setup/3, udp4/5, parse_udp/1]).

suite() -> [{timetrap, {seconds, 60}}].

all() ->
    [batch_delivery_and_credit, batch_options, sendv, sendv_large, sendv_errors, offload_flags].

init_per_suite(Config) -> tunctl_test_lib:init_suite(Config).

end_per_suite(_Config) -> ok.

%% 100 datagrams wait in the kernel; {active, 30} delivers exactly 30 of
%% them, oldest first, in batches of 1..64, then {tuntap_passive, Dev}; the
%% rest stay in the kernel until more credit comes. {deliver, packet} goes
%% back to one message per packet.
batch_delivery_and_credit(_Config) ->
    {Dev, S} = udp_setup(<<"bt-batch0">>, 40, [tun, no_pi, {deliver, batch}]),
    ok = send_seq(S, {198, 18, 40, 2}, 0, 100),
    timer:sleep(100),
    ok = tuncer:setopt(Dev, {active, 30}),
    ?assertEqual(lists:seq(0, 29), batches(Dev, 30)),
    receive {tuntap_passive, Dev} -> ok after 2000 -> ct:fail(not_passive) end,
    ?assertEqual([], mailbox(100)),
    ok = tuncer:setopt(Dev, {active, 100}),
    ?assertEqual(lists:seq(30, 99), batches(Dev, 70)),
    ?assertEqual([], mailbox(100)),
    ok = tuncer:setopt(Dev, {deliver, packet}),
    ok = send_seq(S, {198, 18, 40, 2}, 100, 1),
    receive
        {tuntap, Dev, P} -> ?assertEqual([100], seqs([P]))
    after 2000 -> ct:fail({no_packet, mailbox(0)})
    end,
    ok = tuncer:destroy(Dev).

%% Bad delivery modes are refused, a good one can be given at create.
batch_options(_Config) ->
    ?assertError(badarg, tuncer:create(<<"bt-opt0">>, [tun, {deliver, bulk}])),
    ?assertError(badarg, tuncer:create(<<"bt-opt0">>, [tun, {offload, [ufo]}])),
    {ok, Dev} = tuncer:create(<<"bt-opt0">>, [tun, no_pi, {deliver, batch}, {active, true}]),
    ?assertEqual({error, badarg}, tuncer:setopt(Dev, {deliver, bulk})),
    ?assertEqual({error, badarg}, tuncer:setopt(Dev, {offload, csum})),
    ok = tuncer:setopt(Dev, {deliver, batch}),
    ok = tuncer:destroy(Dev).

%% sendv/2: 100 replies in one call reach the socket, in order.
sendv(_Config) ->
    {Dev, S} = udp_setup(<<"bt-sendv0">>, 41, [tun, no_pi]),
    % the kernel charges a TUN-written skb far more than its bytes
    ok = inet:setopts(S, [{recbuf, 4 bsl 20}]),
    {ok, Port} = inet:port(S),
    Replies = [udp4({198, 18, 41, 2}, {198, 18, 41, 1}, 7, Port, payload(I, 20)) || I <- lists:seq(0, 99)],
    ok = tuncer:sendv(Dev, Replies),
    ?assertEqual(lists:seq(0, 99), received(S, 100)),
    {ok, #{tx_packets := 100}} = tuncer:stats(Dev),
    ok = tuncer:destroy(Dev).

%% More than one port frame's worth (256 KiB) in one sendv/2, and 64 KiB
%% packets: split into frames, never a packet; all arrive.
sendv_large(_Config) ->
    {Dev, S} = udp_setup(<<"bt-sendv1">>, 42, [tun, no_pi]),
    ok = inet:setopts(S, [{recbuf, 4 bsl 20}]),
    {ok, Port} = inet:port(S),
    Sizes = [60000, 100, 65000, 30000, 60000, 60000, 10, 65000],
    Replies = [udp4({198, 18, 42, 2}, {198, 18, 42, 1}, 7, Port, payload(I, Size))
               || {I, Size} <- lists:zip(lists:seq(0, length(Sizes) - 1), Sizes)],
    ?assert(iolist_size(Replies) > 256 * 1024),
    ok = tuncer:sendv(Dev, Replies),
    ?assertEqual(lists:seq(0, length(Sizes) - 1), received(S, length(Sizes))),
    ok = tuncer:destroy(Dev).

%% A packet too large refuses the whole list; bad arguments raise badarg.
sendv_errors(_Config) ->
    {Dev, S} = udp_setup(<<"bt-sendv2">>, 43, [tun, no_pi]),
    {ok, Port} = inet:port(S),
    Good = udp4({198, 18, 43, 2}, {198, 18, 43, 1}, 7, Port, payload(0, 20)),
    ?assertEqual({error, emsgsize}, tuncer:sendv(Dev, [Good, binary:copy(<<0>>, 65552)])),
    ?assertEqual({error, timeout}, gen_udp:recv(S, 0, 200)),
    ?assertEqual(ok, tuncer:sendv(Dev, [])),
    ?assertError(badarg, tuncer:sendv(Dev, [Good, foo])),
    ?assertError(badarg, tuncer:sendv(Dev, Good)),
    ok = tuncer:sendv(Dev, [[<<>>, Good]]),
    ?assertEqual([0], received(S, 1)),
    ok = tuncer:destroy(Dev).

%% {offload, [...]}: needs vnet_hdr and csum; with csum a datagram from a
%% local socket arrives with its checksum left to the device (NEEDS_CSUM,
%% checksum start after the IPv4 header), without it computed.
offload_flags(_Config) ->
    ?assertEqual({error, einval}, tuncer:create(<<"bt-off0">>, [tun, no_pi, {offload, [csum]}])),
    ?assertNot(tunctl_test_lib:exists("bt-off0")),
    Offloads = [csum, tso4, tso6, tso_ecn],
    {Dev, S} = udp_setup(<<"bt-off0">>, 44, [tun, no_pi, vnet_hdr, {offload, Offloads}, {active, true}]),
    Flags = tuncer:flags(Dev),
    ok = gen_udp:send(S, {198, 18, 44, 2}, 9, <<"partial">>),
    {#{vnet := V1}, _} = udp_with_header(Dev, Flags),
    ?assertMatch(#{flags := 1, csum_start := 20, csum_offset := 6}, V1),
    ?assertEqual({error, einval}, tuncer:setopt(Dev, {offload, [tso4]})),
    ?assertEqual({error, badarg}, tuncer:setopt(Dev, {offload, [bogus]})),
    ok = tuncer:setopt(Dev, {offload, []}),
    ok = gen_udp:send(S, {198, 18, 44, 2}, 9, <<"full">>),
    {#{vnet := V2}, _} = udp_with_header(Dev, Flags),
    ?assertEqual(0, maps:get(flags, V2) band 1),
    ok = tuncer:destroy(Dev).

%%--------------------------------------------------------------------

payload(I, Size) ->
    Pad = binary:copy(<<"p">>, max(0, Size - 4)),
    <<I:32, Pad/binary>>.

send_seq(_S, _To, _From, 0) -> ok;
send_seq(S, To, I, N) ->
    ok = gen_udp:send(S, To, 9, payload(I, 20)),
    send_seq(S, To, I + 1, N - 1).

seqs(Packets) ->
    [I || P <- Packets, {_, _, _, _, <<I:32, _/binary>>} <- [parse_udp(P)]].

% The sequence numbers of exactly N packets delivered in batches.
batches(_Dev, 0) ->
    [];
batches(Dev, N) ->
    receive
        {tuntap_batch, Dev, Ps} when is_list(Ps), Ps =/= [], length(Ps) =< 64, length(Ps) =< N ->
            seqs(Ps) ++ batches(Dev, N - length(Ps));
        {tuntap_batch, Dev, Ps} ->
            ct:fail({bad_batch, length(Ps), N})
    after 2000 -> ct:fail({missing, N, mailbox(0)})
    end.

mailbox(Ms) ->
    receive M -> [M | mailbox(0)] after Ms -> [] end.

received(_S, 0) ->
    [];
received(S, N) ->
    {ok, {_, _, <<I:32, _/binary>>}} = gen_udp:recv(S, 0, 2000),
    [I | received(S, N - 1)].

% The next IPv4 UDP packet, decoded with header/2.
udp_with_header(Dev, Flags) ->
    receive
        {tuntap, Dev, P} ->
            case tuncer:header(P, Flags) of
                {ok, H, <<4:4, _:68, 17, _/binary>> = IP} -> {H, IP};
                {ok, _, _} -> udp_with_header(Dev, Flags)
            end
    after 2000 -> ct:fail(no_udp)
    end.
