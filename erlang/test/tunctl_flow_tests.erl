%% Flow control as pure functions (tunctl_flow): no port, no device, no
%% privilege. Each test feeds events and checks the actions, in order.
-module(tunctl_flow_tests).

-include_lib("eunit/include/eunit.hrl").

-define(FROM, {from, tag}).

% Apply events in order; the actions of all of them, and the last state.
run(Events) ->
    run(Events, tunctl_flow:new()).

run(Events, F0) ->
    lists:foldl(
        fun(Event, {Acc, F}) ->
            {Actions, F1} = Event(F),
            {Acc ++ Actions, F1}
        end,
        {[], F0},
        Events
    ).

active(A) -> fun(F) -> tunctl_flow:set_active(A, F) end.
packet(P) -> fun(F) -> tunctl_flow:packet(P, F) end.
packets(N) -> [packet(<<I>>) || I <- lists:seq(1, N)].

delivered(Actions) -> lists:append([Ps || {deliver, Ps} <- Actions]).
limits(Actions) -> [L || {limit, L} <- Actions].

new_is_passive_test() ->
    % a new device is passive and has granted nothing: no action
    ?assertMatch({[], _}, tunctl_flow:set_active(false, tunctl_flow:new())).

active_true_test() ->
    {Actions, _} = run([active(true) | packets(3)]),
    ?assertEqual([{limit, true}, {deliver, [<<1>>]}, {deliver, [<<2>>]}, {deliver, [<<3>>]}], Actions).

once_grants_one_test() ->
    {Actions, _} = run([active(once), packet(<<1>>)]),
    % one packet granted (received + 1), delivered; the port stops by
    % itself at its limit: no {limit, false}
    ?assertEqual([{limit, 1}, {deliver, [<<1>>]}], Actions).

once_again_grants_next_test() ->
    {Actions, _} = run([active(once), packet(<<1>>), active(once), packet(<<2>>)]),
    ?assertEqual([<<1>>, <<2>>], delivered(Actions)),
    ?assertEqual([1, 2], limits(Actions)).

active_n_passive_test() ->
    {Actions, _} = run([active(2) | packets(2)]),
    ?assertEqual([{limit, 2}, {deliver, [<<1>>]}, {deliver, [<<2>>]}, passive], Actions).

active_n_adds_test() ->
    % {active, N} adds to the counter, as inet
    {Actions, _} = run([active(2), active(3) | packets(5)]),
    ?assertEqual(5, length(delivered(Actions))),
    ?assertEqual([passive], [A || passive = A <- Actions]),
    ?assertEqual([2, 5], limits(Actions)).

active_n_negative_test() ->
    % a counter at zero or below turns passive at once; credit still
    % outstanding is withdrawn
    {Actions, _} = run([active(3), active(-3)]),
    ?assertEqual([{limit, 3}, passive, {limit, false}], Actions).

active_zero_on_passive_test() ->
    {Actions, _} = run([active(0)]),
    ?assertEqual([passive], Actions).

window_test() ->
    % a large N grants at most 256 at a time, topped up below 128 outstanding
    {A1, F1} = run([active(1000)]),
    ?assertEqual([256], limits(A1)),
    {A2, F2} = run(packets(128), F1),
    ?assertEqual([], limits(A2)),
    {A3, _} = run(packets(1), F2),
    ?assertEqual([129 + 256], limits(A3)).

passive_queues_test() ->
    % packets arriving after {active, false} (already granted) are queued,
    % and delivered when the owner turns active again
    {A1, F1} = run([active(true), active(false), packet(<<1>>), packet(<<2>>)]),
    ?assertEqual([], delivered(A1)),
    ?assertEqual([true, false], limits(A1)),
    {A2, _} = run([active(true)], F1),
    ?assertEqual([{deliver, [<<1>>, <<2>>]}, {limit, true}], A2).

recv_queued_test() ->
    {_, F1} = run([active(true), active(false), packet(<<"abcdef">>)]),
    {Actions, F2} = tunctl_flow:recv(?FROM, 3, F1),
    ?assertEqual([{reply, ?FROM, {ok, <<"abc">>}}], Actions),
    % empty queue: ask the port
    ?assertMatch({[{read, ?FROM, 10}], _}, tunctl_flow:recv(?FROM, 10, F2)).

recv_active_test() ->
    {_, F} = run([active(true)]),
    ?assertMatch({[{reply, ?FROM, {error, einval}}], _}, tunctl_flow:recv(?FROM, 10, F)).

read_reply_order_test() ->
    % a packet read while packets are queued: the oldest one is answered
    {_, F1} = run([active(true), active(false), packet(<<1>>)]),
    {Actions, F2} = tunctl_flow:read_reply(?FROM, 10, {ok, <<2>>}, F1),
    ?assertEqual([{reply, ?FROM, {ok, <<1>>}}], Actions),
    ?assertMatch({[{reply, ?FROM, {ok, <<2>>}}], _}, tunctl_flow:recv(?FROM, 10, F2)).

read_reply_eagain_test() ->
    {_, F1} = run([active(true), active(false), packet(<<1>>)]),
    ?assertMatch({[{reply, ?FROM, {ok, <<1>>}}], _}, tunctl_flow:read_reply(?FROM, 10, {error, eagain}, F1)),
    ?assertMatch(
        {[{reply, ?FROM, {error, eagain}}], _}, tunctl_flow:read_reply(?FROM, 10, {error, eagain}, tunctl_flow:new())
    ),
    ?assertMatch(
        {[{reply, ?FROM, {error, ebadf}}], _}, tunctl_flow:read_reply(?FROM, 10, {error, ebadf}, tunctl_flow:new())
    ).

wait_grants_one_per_waiter_test() ->
    {A1, F1} = run([fun(F) -> tunctl_flow:wait(k1, ?FROM, 10, F) end, fun(F) -> tunctl_flow:wait(k2, ?FROM, 2, F) end]),
    ?assertEqual([{limit, 1}, {limit, 2}], A1),
    {A2, _} = run([packet(<<"one">>), packet(<<"two">>)], F1),
    ?assertEqual(
        [
            {cancel_timer, k1},
            {reply, ?FROM, {ok, <<"one">>}},
            {cancel_timer, k2},
            {reply, ?FROM, {ok, <<"tw">>}}
        ],
        A2
    ).

wait_queued_test() ->
    {_, F1} = run([active(true), active(false), packet(<<1>>)]),
    ?assertMatch({[{cancel_timer, k}, {reply, ?FROM, {ok, <<1>>}}], _}, tunctl_flow:wait(k, ?FROM, 10, F1)).

wait_active_test() ->
    {_, F} = run([active(true)]),
    ?assertMatch({[{cancel_timer, k}, {reply, ?FROM, {error, einval}}], _}, tunctl_flow:wait(k, ?FROM, 10, F)).

wait_timeout_test() ->
    {_, F1} = tunctl_flow:wait(k, ?FROM, 10, tunctl_flow:new()),
    {Actions, F2} = tunctl_flow:timeout(k, F1),
    ?assertEqual([{reply, ?FROM, {error, timeout}}, {limit, false}], Actions),
    % a late timer is ignored
    ?assertMatch({[], _}, tunctl_flow:timeout(k, F2)).

active_refuses_waiters_test() ->
    {_, F1} = tunctl_flow:wait(k, ?FROM, 10, tunctl_flow:new()),
    {Actions, _} = tunctl_flow:set_active(true, F1),
    ?assertEqual([{cancel_timer, k}, {reply, ?FROM, {error, einval}}, {limit, true}], Actions).

read_error_refuses_waiters_test() ->
    {_, F1} = tunctl_flow:wait(k, ?FROM, 10, tunctl_flow:new()),
    ?assertMatch({[{cancel_timer, k}, {reply, ?FROM, {error, enodev}}], _}, tunctl_flow:read_error(enodev, F1)).

stop_test() ->
    {_, F1} = tunctl_flow:wait(k, ?FROM, 10, tunctl_flow:new()),
    ?assertMatch({[{cancel_timer, k}, {reply, ?FROM, {error, ebadf}}], _}, tunctl_flow:stop(F1)).

hold_test() ->
    Hold = make_ref(),
    {A1, F1} = run([active(true), fun(F) -> tunctl_flow:hold(Hold, F) end, packet(<<1>>)]),
    % held: the port is stopped, the packet already granted is queued
    ?assertEqual([{limit, true}, {limit, false}], A1),
    % another key does not release
    ?assertMatch({[], _}, tunctl_flow:release(make_ref(), F1)),
    {A2, _} = tunctl_flow:release(Hold, F1),
    ?assertEqual([{demonitor, Hold}, {deliver, [<<1>>]}, {limit, true}], A2).

truncate_test() ->
    {_, F1} = run([active(true), active(false), packet(<<"abc">>)]),
    ?assertMatch({[{reply, ?FROM, {ok, <<"abc">>}}], _}, tunctl_flow:recv(?FROM, 100, F1)).

%%--------------------------------------------------------------------
%% Batches ({tuntap_batch, Ref, Packets} from the port)

batch(Ps) -> fun(F) -> tunctl_flow:packets(Ps, F) end.

batch_active_true_test() ->
    {Actions, _} = run([active(true), batch([<<1>>, <<2>>, <<3>>])]),
    ?assertEqual([{limit, true}, {deliver, [<<1>>, <<2>>, <<3>>]}], Actions).

batch_credit_counts_packets_test() ->
    % {active, 5}: a batch of 3 leaves 2; the next batch of 3 (the port
    % never sends beyond its limit, but a change of mode can overtake
    % packets in flight) delivers 2, turns passive and queues the third
    {A1, F1} = run([active(5), batch([<<1>>, <<2>>, <<3>>])]),
    ?assertEqual([{limit, 5}, {deliver, [<<1>>, <<2>>, <<3>>]}], A1),
    {A2, F2} = run([batch([<<4>>, <<5>>, <<6>>])], F1),
    ?assertEqual([{deliver, [<<4>>, <<5>>]}, passive], A2),
    {A3, _} = run([active(10)], F2),
    ?assertEqual([<<6>>], delivered(A3)),
    % 6 received, 9 left of the counter: limit 6 + 9
    ?assertEqual([15], limits(A3)).

batch_once_test() ->
    {A1, F1} = run([active(once), batch([<<1>>, <<2>>])]),
    ?assertEqual([{limit, 1}, {deliver, [<<1>>]}], A1),
    {A2, _} = run([active(once)], F1),
    ?assertEqual([{deliver, [<<2>>]}], A2).

batch_behind_queue_test() ->
    % queued packets are older than a batch: they go first, in one action
    {_, F1} = run([active(true), active(false), batch([<<1>>, <<2>>])]),
    {A2, _} = run([active(true), batch([<<3>>])], F1),
    ?assertEqual([<<1>>, <<2>>, <<3>>], delivered(A2)).

batch_to_waiters_test() ->
    % passive with two recv/3 callers: one packet each, the rest queued
    {_, F1} = tunctl_flow:wait(k1, {a, t}, 10, tunctl_flow:new()),
    {_, F2} = tunctl_flow:wait(k2, {b, t}, 10, F1),
    {A3, F3} = tunctl_flow:packets([<<1>>, <<2>>, <<3>>], F2),
    ?assertEqual([{cancel_timer, k1}, {reply, {a, t}, {ok, <<1>>}},
                  {cancel_timer, k2}, {reply, {b, t}, {ok, <<2>>}}], A3),
    ?assertMatch({[{reply, ?FROM, {ok, <<3>>}}], _}, tunctl_flow:recv(?FROM, 10, F3)).
