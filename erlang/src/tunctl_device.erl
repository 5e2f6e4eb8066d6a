%% @private
%% @doc The device process behind a `tuncer' device: a gen_server that
%% owns one `tunctl_port' session (`tunctl_session') for one device,
%% performs the decisions of `tunctl_flow', replies to the API calls of
%% `tuncer', and keeps the owner: it is linked to the owner, stops when
%% the owner exits, and moves deliveries on `controlling_process/2'.
%%
%% What the API means is documented in `tuncer'; this module is the glue
%% between the owner, the session and the flow control. Requests from
%% `tuncer' (`call/2,3'): `devname', `flags', `getfd', `destroy',
%% `{port, Cmd}' (a port command without its Ref), `{active, A}',
%% `{recv, Size}', `{recv, Size, Timeout}', `{read, Size}' (a read from
%% the device whatever the mode: `read/1,2' on the descriptor),
%% `{controlling_process, Pid}', `{deliver, packet | batch}'. Packets to
%% send (`send/3', `sendv/2') are plain messages this module owns, taken
%% from the mailbox in batches, not casts; what the kernel would refuse is
%% refused before (`send/3' looks the device's flags up in the registry).
%% The descriptor of `getfd' is made on the first request (`tunctl_fds');
%% requests arriving meanwhile wait for it.
%%
%% The port always sends batch frames (`{deliver, Ref, batch}' at open):
%% one Erlang message per poll round instead of one per packet. The owner
%% gets what it asked for: one `{tuntap, Dev, Packet}' per packet, or
%% `{tuntap_batch, Dev, Packets}' with at most 64 packets each.
-module(tunctl_device).
-behaviour(gen_server).

-include_lib("kernel/include/logger.hrl").
-include("tunctl_proto.hrl").

-export([start/1, stop/1, call/2, call/3, send/3, sendv/2, release/2]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

%% A port that does not answer within this time is considered hung.
-define(CALL_TIMEOUT, 10000).
-define(START_TIMEOUT, 20000).
%% send/3: up to this many packets already queued in the mailbox leave in
%% one frame (one port_command, one pipe write; still one write(2) each).
-define(SEND_BATCH, 64).
-define(SEND, '$tunctl_send').
-define(SENDV, '$tunctl_sendv').
%% {deliver, batch}: at most this many packets per message to the owner,
%% as in the port's batch frames.
-define(MAX_BATCH, ?TUNCTL_MAX_BATCH).

-record(state, {
    owner :: pid(),
    session :: tunctl_session:session(),
    ref :: tunctl_registry:handle(),
    dev :: binary(),
    flags :: non_neg_integer(),
    flow = tunctl_flow:new() :: tunctl_flow:flow(),
    % what the owner gets: {tuntap, Dev, P} each, or {tuntap_batch, Dev, Ps}
    deliver = packet :: packet | batch,
    % getfd: none yet, being made (callers waiting), or the descriptor
    fd = none :: none | {making, [gen_server:from()]} | tunctl_fds:fd()
}).

%%--------------------------------------------------------------------
%%% Client side (the calling process)
%%--------------------------------------------------------------------

%% @doc Start a device process owned by (and, once open, linked to) the
%% caller; the arguments are `tunctl_opts:create_args/2''s.
-spec start(tunctl_opts:create_args()) -> {ok, pid()} | {error, term()}.
start(Args) ->
    case application:ensure_all_started(tunctl) of
        {ok, _} ->
            case gen_server:start(?MODULE, {self(), Args}, [{timeout, ?START_TIMEOUT}]) of
                {error, {shutdown, Reason}} -> {error, Reason};
                Result -> Result
            end;
        {error, _} = Error ->
            Error
    end.

%% @doc A request, answered within the time a port may take.
-spec call(pid(), term()) -> term().
call(Dev, Request) ->
    gen_server:call(Dev, Request, ?CALL_TIMEOUT).

%% @doc Close the device and wait until its process has exited, so that
%% everything its `terminate/2' releases (the port, the device, the
%% handle) is released when this returns.
-spec stop(pid()) -> ok.
stop(Dev) ->
    MRef = erlang:monitor(process, Dev),
    try
        call(Dev, destroy)
    after
        receive
            {'DOWN', MRef, process, Dev, _} -> ok
        after ?CALL_TIMEOUT -> erlang:demonitor(MRef, [flush])
        end
    end.

%% @doc A request that itself waits up to `Wait' ms (`recv/3').
-spec call(pid(), term(), timeout()) -> term().
call(Dev, Request, infinity) ->
    gen_server:call(Dev, Request, infinity);
call(Dev, Request, Wait) ->
    gen_server:call(Dev, Request, Wait + ?CALL_TIMEOUT).

%% @doc Queue a packet of `Size' bytes to write (asynchronous), unless the
%% kernel would refuse it (`{error, einval}'). A device process of this
%% node that is gone exits the caller with `noproc', as a call would.
-spec send(pid(), non_neg_integer(), iodata()) -> ok | {error, einval}.
send(Dev, Size, Data) ->
    queue(Dev, [{Size, Data}], {?SEND, Size, Data}).

%% @doc Queue packets to write, each with its size, in order (asynchronous),
%% with `send/3''s checks: if the kernel would refuse any, none is queued.
-spec sendv(pid(), [{non_neg_integer(), iodata()}]) -> ok | {error, einval}.
sendv(Dev, Packets) ->
    queue(Dev, Packets, {?SENDV, Packets}).

% No fun is made per call: this runs for every packet sent.
queue(Dev, Packets, Msg) when node(Dev) =:= node() ->
    case tunctl_registry:flags(Dev) of
        {ok, Flags} ->
            case frames_ok(Flags, Packets) of
                true ->
                    Dev ! Msg,
                    ok;
                false ->
                    {error, einval}
            end;
        error ->
            exit({noproc, gone_call(Dev, Msg)})
    end;
queue(Dev, _Packets, Msg) ->
    Dev ! Msg,
    ok.

frames_ok(Flags, [{Size, Data} | Packets]) ->
    tunctl_opts:frame_check(Flags, Size, Data) =:= ok andalso frames_ok(Flags, Packets);
frames_ok(_Flags, []) ->
    true.

% The exit reason a gen_server call to the gone device would give.
gone_call(Dev, {?SEND, _Size, Data}) -> {tuncer, send, [Dev, Data]};
gone_call(Dev, {?SENDV, Packets}) -> {tuncer, sendv, [Dev, [P || {_, P} <- Packets]]}.

%% @doc The old owner moved its mailbox (`controlling_process/2'):
%% deliveries resume.
-spec release(pid(), reference()) -> ok.
release(Dev, Hold) ->
    gen_server:cast(Dev, {release, Hold}).

%%--------------------------------------------------------------------
%%% Callbacks
%%--------------------------------------------------------------------

%% @private
-spec init({pid(), tunctl_opts:create_args()}) -> {ok, #state{}} | {stop, {shutdown, term()}}.
init({Owner, {Ifname, Flags, Active, Deliver, Netns, Steps, PortOpts}}) ->
    process_flag(trap_exit, true),
    {ok, Ref} = tunctl_registry:alloc(self()),
    case open(Ref, Ifname, Flags, Netns, Steps, PortOpts) of
        {ok, Session, Dev, FlagsInt} ->
            true = link(Owner),
            ok = tunctl_registry:set_flags(FlagsInt),
            State = #state{owner = Owner, session = Session, ref = Ref, dev = Dev, flags = FlagsInt,
                           deliver = Deliver},
            {ok, flow(fun(F) -> tunctl_flow:set_active(Active, F) end, State)};
        {error, Reason} ->
            ok = tunctl_registry:free(Ref),
            % {shutdown, _}: create/0,1,2 returns the error without a crash report
            {stop, {shutdown, Reason}}
    end.

%% @private
-spec handle_call(term(), gen_server:from(), #state{}) ->
    {reply, term(), #state{}} | {noreply, #state{}} | {stop, normal, ok, #state{}}.
handle_call(devname, _From, #state{dev = Dev} = State) ->
    {reply, Dev, State};
handle_call(flags, _From, #state{flags = Flags} = State) ->
    {reply, Flags, State};
handle_call(getfd, _From, #state{fd = Fd} = State) when is_integer(Fd) ->
    {reply, Fd, State};
handle_call(getfd, From, #state{fd = {making, Waiting}} = State) ->
    {noreply, State#state{fd = {making, [From | Waiting]}}};
handle_call(getfd, From, #state{ref = Ref} = State) ->
    {noreply, request({relay_listen, Ref}, relay_listen, State#state{fd = {making, [From]}})};
handle_call({read, Size}, From, #state{ref = Ref} = State) ->
    {noreply, request({read, Ref, Size}, {From, {read, Size}}, State)};
handle_call(destroy, _From, State) ->
    {stop, normal, ok, State};
handle_call({port, Cmd}, From, #state{ref = Ref} = State) ->
    {noreply, request(erlang:insert_element(2, Cmd, Ref), {From, Cmd}, State)};
handle_call({deliver, Mode}, _From, State) ->
    {reply, ok, State#state{deliver = Mode}};
handle_call({active, A}, _From, State) ->
    {reply, ok, flow(fun(F) -> tunctl_flow:set_active(A, F) end, State)};
handle_call({recv, Size}, From, State) ->
    {noreply, flow(fun(F) -> tunctl_flow:recv(From, Size, F) end, State)};
handle_call({recv, Size, Timeout}, From, State) ->
    Key = recv_timer(Timeout),
    {noreply, flow(fun(F) -> tunctl_flow:wait(Key, From, Size, F) end, State)};
handle_call({controlling_process, Owner}, _From, #state{owner = Owner} = State) ->
    {reply, ok, State};
handle_call({controlling_process, Pid}, {Owner, _}, #state{owner = Owner} = State) ->
    true = unlink(Owner),
    true = link(Pid),
    % hold deliveries while the old owner moves its mailbox
    Hold = erlang:monitor(process, Owner),
    {reply, {hold, Hold}, flow(fun(F) -> tunctl_flow:hold(Hold, F) end, State#state{owner = Pid})};
handle_call({controlling_process, _}, _From, State) ->
    {reply, {error, not_owner}, State};
handle_call(_Request, _From, State) ->
    {reply, {error, badarg}, State}.

%% @private
-spec handle_cast(term(), #state{}) -> {noreply, #state{}}.
handle_cast({release, Hold}, State) ->
    {noreply, released(Hold, State)};
handle_cast(_Msg, State) ->
    {noreply, State}.

%% @private
-spec handle_info(term(), #state{}) -> {noreply, #state{}} | {stop, term(), #state{}}.
handle_info({?SEND, Size, Data}, State) ->
    {noreply, write([{Size, Data} | queued_sends(waiting(?SEND_BATCH - 1))], State)};
handle_info({?SENDV, Packets}, State) ->
    {noreply, write(Packets ++ queued_sends(waiting(?SEND_BATCH - 1)), State)};
handle_info({tunctl_fds, relay, Fd, On}, #state{ref = Ref, fd = Fd} = State) ->
    {noreply, request({relay, Ref, On}, relay, State)};
handle_info({'EXIT', Owner, _}, #state{owner = Owner} = State) ->
    {stop, normal, State};
handle_info({timeout, Key, recv}, State) ->
    {noreply, flow(fun(F) -> tunctl_flow:timeout(Key, F) end, State)};
handle_info({'DOWN', Hold, process, _, _}, State) ->
    {noreply, released(Hold, State)};
handle_info(Info, #state{session = Session} = State) ->
    case tunctl_session:handle(Info, Session) of
        {event, Frame} -> {noreply, frame(Frame, State)};
        {reply, Tag, Result, S} -> {noreply, reply(Tag, Result, State#state{session = S})};
        {exit, Reason, S} -> {stop, Reason, State#state{session = S}};
        ignore -> {noreply, State}
    end.

%% @private
-spec terminate(term(), #state{}) -> ok.
terminate(_Reason, #state{session = Session, ref = Ref} = State) ->
    Pending = tunctl_session:pending(Session),
    ok = tunctl_registry:set_flags(undefined),
    ok = tunctl_session:close(Session, {close, Ref}),
    _ = [gen_server:reply(From, {error, ebadf}) || {{P, _} = From, _} <- Pending, is_pid(P)],
    _ = [socket:close(User) || {relay_accept, User} <- Pending],
    _ = [gen_server:reply(From, {error, ebadf}) || {making, Waiting} <- [State#state.fd], From <- Waiting],
    _ = flow(fun tunctl_flow:stop/1, State),
    tunctl_registry:free(Ref).

%%--------------------------------------------------------------------
%%% Port
%%--------------------------------------------------------------------

% Start the port, enter the namespace, open the device and configure it,
% waiting for each answer. Any failure closes the device and the port.
open(Ref, Ifname, Flags, Netns, Steps, PortOpts) ->
    case tunctl_session:start(port_args(Netns), PortOpts) of
        {ok, S0} ->
            Enter = [{netns, Path} || Path <- [Netns], Path =/= undefined],
            case run(Enter ++ [{open, Ref, Ifname, Flags}], S0) of
                {{ok, {Dev, FlagsInt}}, S1} when is_binary(Dev), is_integer(FlagsInt) ->
                    % the port sends batch frames, the owner gets what it asked for
                    case run([{deliver, Ref, batch} | [erlang:insert_element(2, Step, Ref) || Step <- Steps]], S1) of
                        {ok, S} ->
                            {ok, S, Dev, FlagsInt};
                        {Error, S} ->
                            ok = tunctl_session:close(S, {close, Ref}),
                            reason(Error)
                    end;
                {Error, S1} ->
                    ok = tunctl_session:close(S1, undefined),
                    reason(Error)
            end;
        {error, _} = Error ->
            Error
    end.

port_args(undefined) -> [];
port_args(_) -> ["-allow-netns"].

% Run commands one after the other while they answer ok: the answer of the
% last one run, and the session.
run([], S) ->
    {ok, S};
run([Cmd | Cmds], S0) ->
    case tunctl_session:call(S0, Cmd, ?CALL_TIMEOUT) of
        {ok, S} when Cmds =/= [] -> run(Cmds, S);
        Result -> Result
    end.

reason({error, _} = Error) -> Error;
reason(Other) -> {error, {badreply, Other}}.

request(Cmd, Tag, #state{session = Session} = State) ->
    State#state{session = tunctl_session:request(Session, Cmd, Tag)}.

frame({tuntap_batch, Ref, Packets}, #state{ref = Ref} = State) ->
    flow(fun(F) -> tunctl_flow:packets(Packets, F) end, State);
frame({tuntap, Ref, Packet}, #state{ref = Ref} = State) ->
    flow(fun(F) -> tunctl_flow:packet(Packet, F) end, State);
frame({tuntap_error, Ref, Posix}, #state{ref = Ref, owner = Owner} = State) ->
    Owner ! {tuntap_error, self(), Posix},
    State;
% Reading the device failed (deleted from outside, ...): the port stopped
% polling it; recv/3 callers waiting for a packet get the error.
frame({tuntap_read_error, Ref, Posix}, #state{ref = Ref, owner = Owner} = State) ->
    Owner ! {tuntap_error, self(), Posix},
    flow(fun(F) -> tunctl_flow:read_error(Posix, F) end, State);
frame({tunctl_error, Reason}, #state{dev = Dev} = State) ->
    ?LOG_WARNING("tuncer ~s: tunctl_port: ~p", [Dev, Reason]),
    State;
frame(Frame, #state{dev = Dev} = State) ->
    ?LOG_WARNING("tuncer ~s: unexpected frame ~p", [Dev, Frame]),
    State.

reply({From, {read, Size}}, Result, State) ->
    flow(fun(F) -> tunctl_flow:read_reply(From, Size, Result, F) end, State);
reply(relay_listen, {ok, Name}, #state{ref = Ref} = State) ->
    % the socket pair and the hand-over are local calls; the port takes
    % the descriptor when it reads relay_accept
    case tunctl_fds:prepare(Name) of
        {ok, User, Nonce} -> request({relay_accept, Ref, Nonce}, {relay_accept, User}, State);
        {error, _} = Error -> fd_made(Error, State)
    end;
reply(relay_listen, Error, State) ->
    fd_made(Error, State);
reply({relay_accept, User}, Result, State) ->
    fd_made(tunctl_fds:adopt(Result, User, self()), State);
reply(relay, _Result, State) ->
    State;
reply({From, _Cmd}, Result, State) ->
    gen_server:reply(From, Result),
    State.

% getfd: the descriptor, or why there is none (the callers exit).
fd_made(Result, #state{fd = {making, Waiting}} = State) ->
    {Reply, Fd} =
        case Result of
            {ok, N} -> {N, N};
            {error, _} = Error -> {Error, none}
        end,
    _ = [gen_server:reply(From, Reply) || From <- lists:reverse(Waiting)],
    State#state{fd = Fd}.

%%--------------------------------------------------------------------
%%% Flow control: tunctl_flow decides, this process acts
%%--------------------------------------------------------------------

flow(Fun, #state{flow = F0} = State) ->
    {Actions, F} = Fun(F0),
    lists:foldl(fun act/2, State#state{flow = F}, Actions).

act({deliver, Packets}, #state{owner = Owner, deliver = packet} = State) ->
    _ = [Owner ! {tuntap, self(), P} || P <- Packets],
    State;
act({deliver, Packets}, #state{owner = Owner} = State) ->
    ok = batches(Owner, Packets, length(Packets)),
    State;
act(passive, #state{owner = Owner} = State) ->
    Owner ! {tuntap_passive, self()},
    State;
act({reply, From, Reply}, State) ->
    gen_server:reply(From, Reply),
    State;
act({cancel_timer, Key}, State) ->
    _ = erlang:cancel_timer(Key),
    State;
act({limit, Limit}, #state{session = Session, ref = Ref} = State) ->
    ok = tunctl_session:command(Session, tunctl_proto:active(Ref, Limit)),
    State;
act({read, From, Size}, #state{ref = Ref, fd = Fd} = State) ->
    % a passive device with a getfd descriptor: packets go there first
    case is_integer(Fd) andalso tunctl_fds:read(Fd, Size) of
        {ok, _} = Ok ->
            gen_server:reply(From, Ok),
            State;
        _ ->
            request({read, Ref, Size}, {From, {read, Size}}, State)
    end;
act({demonitor, Hold}, State) ->
    _ = erlang:demonitor(Hold, [flush]),
    State.

released(Hold, State) ->
    flow(fun(F) -> tunctl_flow:release(Hold, F) end, State).

% {tuntap_batch, Dev, Packets} messages of at most MAX_BATCH packets.
batches(Owner, Packets, Len) when Len =< ?MAX_BATCH ->
    Owner ! {tuntap_batch, self(), Packets},
    ok;
batches(Owner, Packets, Len) ->
    {Now, Later} = lists:split(?MAX_BATCH, Packets),
    Owner ! {tuntap_batch, self(), Now},
    batches(Owner, Later, Len - ?MAX_BATCH).

% Hand packets to the port: as few frames as its frame limit allows.
write(Packets, #state{session = Session, ref = Ref} = State) ->
    _ = [ok = tunctl_session:command(Session, F) || F <- tunctl_proto:send_frames(Ref, Packets)],
    State.

% At most N, and no more than the messages waiting: an empty mailbox costs
% no receive, a short one no more scans than it has messages.
waiting(N) ->
    {message_queue_len, L} = process_info(self(), message_queue_len),
    min(N, L).

% Take the send/2 and sendv/2 messages already waiting in the mailbox (at
% most N), in order, without waiting for more.
queued_sends(0) ->
    [];
queued_sends(N) ->
    receive
        {?SEND, Size, Data} -> [{Size, Data} | queued_sends(N - 1)];
        {?SENDV, Packets} -> Packets ++ queued_sends(N - 1)
    after 0 -> []
    end.

recv_timer(infinity) -> make_ref();
recv_timer(Timeout) -> erlang:start_timer(Timeout, self(), recv).
