%% @private
%% @doc Flow control of a device process, as pure functions.
%%
%% The state says what the owner asked for (`{active, true | false | once |
%% N}'), the packets received but not delivered, the `recv/3' callers
%% waiting, whether deliveries are held (`controlling_process/2' in
%% progress), and the credit granted to the port (the last
%% `{active, Ref, Limit}'). Every function returns `{Actions, State}': the
%% device process (`tuncer') performs the actions, in order:
%% <ul>
%% <li>`{deliver, Packets}': hand `Packets' (oldest first, at least one)
%%     to the owner: one `{tuntap, Dev, Packet}' each, or
%%     `{tuntap_batch, Dev, Packets}' in batches;</li>
%% <li>`passive': send `{tuntap_passive, Dev}' to the owner;</li>
%% <li>`{reply, From, Reply}': `gen_server:reply/2';</li>
%% <li>`{cancel_timer, Key}': cancel the timer of a `recv/3' waiter;</li>
%% <li>`{limit, Limit}': send `{active, Ref, Limit}' to the port;</li>
%% <li>`{read, From, Size}': ask the port for one packet (`recv/2'), then
%%     pass its answer to `read_reply/4';</li>
%% <li>`{demonitor, Key}': the hold is released.</li>
%% </ul>
%%
%% Credit: the port reads packets only up to `Limit' (a count of packets
%% since the device was opened, or `true' / `false'). `{active, N}' grants
%% at most `?WINDOW' packets at a time, topped up when fewer than
%% `?LOW_WATER' are outstanding; `once' and `recv/3' waiters grant exactly
%% what they can take, so packets nobody asked for stay in the kernel.
-module(tunctl_flow).

-export([
    new/0,
    packet/2,
    packets/2,
    set_active/2,
    recv/3,
    wait/4,
    read_reply/4,
    timeout/2,
    read_error/2,
    hold/2,
    release/2,
    stop/1
]).

%% {active, N}: at most WINDOW packets are granted to the port at a time,
%% topped up when fewer than LOW_WATER are outstanding.
-define(WINDOW, 256).
-define(LOW_WATER, 128).

-record(flow, {
    % true | false | once | remaining count
    active = false :: boolean() | once | pos_integer(),
    % packets received from the port
    received = 0 :: non_neg_integer(),
    % the last {active, Ref, Limit} sent (a new device starts passive)
    limit = 0 :: tunctl_proto:limit(),
    % packets received but not delivered
    queue = queue:new() :: queue:queue(binary()),
    % recv/3 callers waiting for a packet: {Key, From, Size}
    waiters = [] :: [{term(), gen_server:from(), pos_integer()}],
    % controlling_process/2 in progress: deliveries are held
    hold = false :: false | reference()
}).

-opaque flow() :: #flow{}.
-type action() ::
    {deliver, [binary(), ...]}
    | passive
    | {reply, gen_server:from(), term()}
    | {cancel_timer, term()}
    | {limit, tunctl_proto:limit()}
    | {read, gen_server:from(), pos_integer()}
    | {demonitor, reference()}.
-type result() :: {[action()], flow()}.

-export_type([flow/0, action/0]).

%%--------------------------------------------------------------------
%%% API
%%--------------------------------------------------------------------

%% @doc A new device: passive, nothing granted.
-spec new() -> flow().
new() ->
    #flow{}.

%% @doc A packet from the port (`{tuntap, Ref, Packet}').
-spec packet(binary(), flow()) -> result().
packet(Packet, F) ->
    packets([Packet], F).

%% @doc Packets from the port, oldest first (`{tuntap_batch, Ref, Packets}'):
%% the credit counts each. An active owner gets as many as its mode allows
%% in one `deliver' action; the rest are queued or go to `recv/3' callers.
-spec packets([binary()], flow()) -> result().
packets(Packets, #flow{received = R} = F) ->
    done(credit(arrived(Packets, {[], F#flow{received = R + length(Packets)}}))).

%% @doc `setopt(Dev, {active, A})' (and the `{active, A}' of `create/2').
-spec set_active(tuncer:active(), flow()) -> result().
set_active(A, F) ->
    done(active(A, {[], F})).

%% @doc `recv/2': a queued packet, else a `{read, From, Size}' action;
%% `{error, einval}' on an active device.
-spec recv(gen_server:from(), pos_integer(), flow()) -> result().
recv(From, _Size, #flow{active = A} = F) when A =/= false ->
    {[{reply, From, {error, einval}}], F};
recv(From, Size, #flow{queue = Queue} = F) ->
    case queue:out(Queue) of
        {{value, Packet}, Rest} -> {[{reply, From, {ok, truncate(Packet, Size)}}], F#flow{queue = Rest}};
        {empty, _} -> {[{read, From, Size}], F}
    end.

%% @doc `recv/3': a queued packet, else wait for one. `Key' names the
%% caller's timer (the timeout arrives as `timeout/2'); it is cancelled as
%% soon as the caller has its answer.
-spec wait(term(), gen_server:from(), pos_integer(), flow()) -> result().
wait(Key, From, _Size, #flow{active = A} = F) when A =/= false ->
    {[{cancel_timer, Key}, {reply, From, {error, einval}}], F};
wait(Key, From, Size, #flow{queue = Queue, waiters = Waiters} = F) ->
    case queue:out(Queue) of
        {{value, Packet}, Rest} ->
            {[{cancel_timer, Key}, {reply, From, {ok, truncate(Packet, Size)}}], F#flow{queue = Rest}};
        {empty, _} ->
            done(credit({[], F#flow{waiters = Waiters ++ [{Key, From, Size}]}}))
    end.

%% @doc The port's answer to a `{read, From, Size}' action. A packet read
%% while packets were queued is newer than them: the caller gets the oldest.
-spec read_reply(gen_server:from(), pos_integer(), term(), flow()) -> result().
read_reply(From, Size, {ok, Packet}, #flow{queue = Queue} = F) ->
    {{value, First}, Rest} = queue:out(queue:in(Packet, Queue)),
    {[{reply, From, {ok, truncate(First, Size)}}], F#flow{queue = Rest}};
read_reply(From, Size, {error, eagain} = Error, #flow{queue = Queue} = F) ->
    case queue:out(Queue) of
        {{value, First}, Rest} -> {[{reply, From, {ok, truncate(First, Size)}}], F#flow{queue = Rest}};
        {empty, _} -> {[{reply, From, Error}], F}
    end;
read_reply(From, _Size, Result, F) ->
    {[{reply, From, Result}], F}.

%% @doc The timer `Key' of a `recv/3' caller fired.
-spec timeout(term(), flow()) -> result().
timeout(Key, #flow{waiters = Waiters} = F) ->
    case lists:keytake(Key, 1, Waiters) of
        {value, {Key, From, _}, Rest} -> done(credit({[{reply, From, {error, timeout}}], F#flow{waiters = Rest}}));
        false -> {[], F}
    end.

%% @doc Reading the device failed (the port stopped polling it): `recv/3'
%% callers get the error.
-spec read_error(atom(), flow()) -> result().
read_error(Posix, F) ->
    done(refuse(Posix, {[], F})).

%% @doc Hold deliveries (queue packets) until `release(Key, _)'.
-spec hold(reference(), flow()) -> result().
hold(Key, F) ->
    done(credit({[], F#flow{hold = Key}})).

%% @doc Release the hold `Key' and deliver what was queued meanwhile; any
%% other key is ignored.
-spec release(reference(), flow()) -> result().
release(Key, #flow{hold = Key} = F) when Key =/= false ->
    done(credit(drain({[{demonitor, Key}], F#flow{hold = false}})));
release(_Key, F) ->
    {[], F}.

%% @doc The device is closing: waiting callers get `{error, ebadf}'.
-spec stop(flow()) -> result().
stop(F) ->
    done(refuse(ebadf, {[], F})).

%%--------------------------------------------------------------------
%%% Internal functions: {Actions (newest first), Flow} -> same
%%--------------------------------------------------------------------

done({Actions, F}) ->
    {lists:reverse(Actions), F}.

arrived([], AF) ->
    AF;
arrived([Packet | Rest], {Acc, #flow{active = false, waiters = [{Key, From, Size} | Waiters]} = F}) ->
    arrived(Rest, {[{reply, From, {ok, truncate(Packet, Size)}}, {cancel_timer, Key} | Acc], F#flow{waiters = Waiters}});
arrived(Packets, {Acc, #flow{active = false} = F}) ->
    {Acc, enqueue(Packets, F)};
arrived(Packets, {Acc, #flow{hold = Hold} = F}) when Hold =/= false ->
    {Acc, enqueue(Packets, F)};
arrived(Packets, {Acc, #flow{active = Active, queue = Queue} = F} = AF) ->
    case queue:is_empty(Queue) of
        true ->
            Len = length(Packets),
            case allowed(Active, Len) of
                % all of them: no copy of the list
                Len ->
                    deliver(Packets, AF);
                K ->
                    {Now, Later} = lists:split(K, Packets),
                    arrived(Later, deliver(Now, AF))
            end;
        false ->
            % older packets first
            drain({Acc, enqueue(Packets, F)})
    end.

enqueue(Packets, #flow{queue = Queue} = F) ->
    F#flow{queue = queue:join(Queue, queue:from_list(Packets))}.

% How many of Len packets an active owner may have now.
allowed(true, Len) -> Len;
allowed(once, Len) -> min(1, Len);
allowed(N, Len) -> min(N, Len).

deliver([], AF) ->
    AF;
deliver(Packets, {Acc0, #flow{active = Active} = F}) ->
    Acc = [{deliver, Packets} | Acc0],
    case Active of
        true -> {Acc, F};
        once -> {Acc, F#flow{active = false}};
        N when N =:= length(Packets) -> passive({Acc, F});
        N -> {Acc, F#flow{active = N - length(Packets)}}
    end.

passive({Acc, F}) ->
    {[passive | Acc], F#flow{active = false}}.

active(false, {Acc, F}) ->
    credit({Acc, F#flow{active = false}});
active(N, {Acc, #flow{active = Count} = F} = AF) when is_integer(N) ->
    case counter(Count) + N of
        C when C =< 0 -> credit(passive(AF));
        C -> credit(drain(refuse(einval, {Acc, F#flow{active = C}})))
    end;
active(A, {Acc, F}) ->
    credit(drain(refuse(einval, {Acc, F#flow{active = A}}))).

counter(N) when is_integer(N) -> N;
counter(_) -> 0.

% recv/3 callers cannot wait on an active device, nor on one that failed.
refuse(Reason, {Acc, #flow{waiters = Waiters} = F}) ->
    Refused = lists:foldl(
        fun({Key, From, _}, A) -> [{reply, From, {error, Reason}}, {cancel_timer, Key} | A] end,
        Acc,
        Waiters
    ),
    {Refused, F#flow{waiters = []}}.

% Deliver queued packets to an active owner, as many as it may have.
drain({_, #flow{active = false}} = AF) ->
    AF;
drain({_, #flow{hold = Hold}} = AF) when Hold =/= false ->
    AF;
drain({Acc, #flow{active = Active, queue = Queue} = F}) ->
    {Now, Rest} = queue:split(allowed(Active, queue:len(Queue)), Queue),
    deliver(queue:to_list(Now), {Acc, F#flow{queue = Rest}}).

% The limit the port should have now.
desired(#flow{hold = Hold}) when Hold =/= false -> false;
desired(#flow{active = true}) -> true;
desired(#flow{active = false, waiters = []}) -> false;
desired(#flow{active = false, waiters = Waiters, received = R}) -> R + length(Waiters);
desired(#flow{active = once, received = R}) -> R + 1;
desired(#flow{active = N, received = R}) -> R + min(N, ?WINDOW).

% Send {active, Ref, Limit} when the limit changes, except for top-ups while
% enough credit is outstanding and for "stop" when the port is already
% stopped.
credit({Acc, #flow{limit = Old, received = R} = F} = AF) ->
    case desired(F) of
        Old ->
            AF;
        false when is_integer(Old), Old =< R ->
            AF;
        New when is_integer(Old), is_integer(New), New > Old, Old - R >= ?LOW_WATER ->
            AF;
        New ->
            {[{limit, New} | Acc], F#flow{limit = New}}
    end.

truncate(Packet, Size) when byte_size(Packet) =< Size -> Packet;
truncate(Packet, Size) -> binary:part(Packet, 0, Size).
