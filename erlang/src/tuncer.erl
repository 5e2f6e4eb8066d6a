%% @doc TUN/TAP devices as processes.
%%
%% Each device is a `tuncer' process owning one `tunctl_port' port program
%% (doc/protocol.md), which owns the TUN/TAP file descriptor. The API is the
%% one of msantos/tunctl 1.0.
%%
%% == Owner ==
%%
%% The process calling `create/0,1,2' owns the device and is linked to it.
%% `controlling_process/2' moves ownership (and the link). When the owner
%% exits, for any reason, the device is closed and goes away (unless it was
%% made persistent with `persist/2').
%%
%% == Messages to the owner ==
%%
%% <ul>
%% <li>`{tuntap, Dev, Packet}': a packet read from the device (active mode).
%%     `Packet' is a sub-binary of the frame the port sent; owners that keep
%%     packets for long should `binary:copy/1' them.</li>
%% <li>`{tuntap_passive, Dev}': an `{active, N}' counter reached zero and
%%     the device is now passive, as `{tcp_passive, Socket}'.</li>
%% <li>`{tuntap_error, Dev, Posix}': an asynchronous error, for example a
%%     failed `send/2' (`send/2' returns before the packet is written).</li>
%% </ul>
%%
%% == Flow control ==
%%
%% `{active, true | false | once | N}' behave as in `inet': `once' delivers
%% one packet then turns passive; `N' adds to a counter, and at zero the
%% device turns passive and `{tuntap_passive, Dev}' is sent. Packets read by
%% the port are only those the owner may receive: a passive device leaves
%% packets in the kernel queue, where `recv/1,2,3' and `read/1,2' find them.
%%
%% == Port failure ==
%%
%% If the port program exits, the device process stops with reason
%% `{tunctl_port_exit, Status}' (`Status' the exit status, or the port's exit
%% reason). The owner is linked: an owner that does not trap exits dies with
%% that reason, one that traps exits receives
%% `{'EXIT', Dev, {tunctl_port_exit, Status}}'.
-module(tuncer).
-behaviour(gen_server).

-include_lib("kernel/include/logger.hrl").

-export([
    create/0, create/1, create/2,
    devname/1, flags/1, getfd/1,
    destroy/1,

    persist/2,
    owner/2, group/2,

    read/1, read/2,
    write/2,

    send/2,
    recv/1, recv/2, recv/3,

    up/2, up/3, down/1,
    dstaddr/2, broadcast/2,
    mtu/1, mtu/2,

    controlling_process/2,
    setopt/2
]).

-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

%% Interface names are at most 15 bytes (IFNAMSIZ - 1).
-define(IFNAMSIZ, 16).
%% 65535 + packet information (4) + virtio-net header (12).
-define(MAX_PACKET, 65551).
-define(READ_SIZE, 65551).
%% A port that does not answer within this time is considered hung.
-define(CALL_TIMEOUT, 10000).
-define(START_TIMEOUT, 20000).
-define(CLOSE_TIMEOUT, 2000).
%% {active, N}: at most WINDOW packets are granted to the port at a time,
%% topped up when fewer than LOW_WATER are outstanding.
-define(WINDOW, 256).
-define(LOW_WATER, 128).

-define(IS_ACTIVE(A),
    (is_boolean(A) orelse A =:= once orelse
        (is_integer(A) andalso A >= -32768 andalso A =< 32767))
).

-type dev() :: pid().
-type handle() :: tunctl_registry:handle().
-type posix() :: atom().
-type active() :: boolean() | once | -32768..32767.
-type flag() :: tun | tap | no_pi | one_queue | multi_queue | vnet_hdr | tun_excl.
-type option() :: flag() | {active, active()}.
-type ip() :: inet:ip_address() | string() | binary().

-export_type([dev/0, handle/0, option/0, active/0]).

-record(state, {
    owner :: pid(),
    port :: port() | undefined,
    ref :: handle(),
    dev :: binary(),
    flags :: non_neg_integer(),
    % true | false | once | remaining count
    active = false :: boolean() | once | pos_integer(),
    % {tuntap, Ref, _} frames received from the port
    received = 0 :: non_neg_integer(),
    % the last {active, Ref, Limit} sent (a new device starts passive)
    limit = 0 :: tunctl_proto:limit(),
    % packets received but not delivered
    queue = queue:new() :: queue:queue(binary()),
    % recv/3 callers waiting for a packet: {Key, From, Size}
    waiters = [] :: [{reference(), gen_server:from(), pos_integer()}],
    % controlling_process/2 in progress: deliveries are held
    hold = false :: false | reference(),
    id = 1 :: non_neg_integer(),
    pending = #{} :: #{non_neg_integer() => {gen_server:from(), term()}},
    % IPv4 address configured through this process: {Addr, PrefixLen}
    addr4 :: undefined | {<<_:32>>, 0..32}
}).

%%--------------------------------------------------------------------
%%% API
%%--------------------------------------------------------------------

%% @doc Create a TAP device named by the kernel, passive.
%% @equiv create(<<>>)
-spec create() -> {ok, dev()} | {error, term()}.
create() ->
    create(<<>>).

%% @doc Create a device named `Name' with the default options
%% `[tap, no_pi, {active, false}]'.
%% @equiv create(Name, [])
-spec create(iodata()) -> {ok, dev()} | {error, term()}.
create(Name) ->
    create(Name, []).

%% @doc Create a TUN/TAP device.
%%
%% `Name' is the interface name (a string or binary); `<<>>' lets the kernel
%% choose one (`tap0', `tun0', ...). Names of 16 bytes or more return
%% `{error, einval}'.
%%
%% `Options' default to `[tap, no_pi, {active, false}]' when empty;
%% otherwise they are used as given, with `tap' added when neither `tun' nor
%% `tap' is present. An unknown option raises `badarg'.
%%
%% ```
%% 1> {ok, Dev} = tuncer:create(<<"tun7">>, [tun, no_pi, {active, true}]).
%% {ok,<0.90.0>}
%% 2> tuncer:devname(Dev).
%% <<"tun7">>
%% '''
-spec create(iodata(), [option()]) -> {ok, dev()} | {error, term()}.
create(Name, Options) when is_list(Options) ->
    Ifname = ifname(Name),
    {Flags, Active} = options(Options),
    case byte_size(Ifname) < ?IFNAMSIZ of
        true -> start(Ifname, Flags, Active);
        false -> {error, einval}
    end;
create(_, _) ->
    erlang:error(badarg).

%% @doc The interface name.
-spec devname(dev()) -> binary().
devname(Dev) when is_pid(Dev) ->
    call(Dev, devname).

%% @doc The interface flags (`IFF_TUN', `IFF_NO_PI', ...) as an integer.
-spec flags(dev()) -> non_neg_integer().
flags(Dev) when is_pid(Dev) ->
    call(Dev, flags).

%% @doc The integer handle of the device, for `read/1,2' and `write/2'.
%% It is not a file descriptor: the port program owns the descriptor.
-spec getfd(dev()) -> handle().
getfd(Dev) when is_pid(Dev) ->
    call(Dev, getfd).

%% @doc Close the device and stop its process. A non-persistent device is
%% gone when this returns.
-spec destroy(dev()) -> ok.
destroy(Dev) when is_pid(Dev) ->
    call(Dev, destroy).

%% @doc Keep the interface after the device is closed (`TUNSETPERSIST').
-spec persist(dev(), boolean()) -> ok | {error, posix()}.
persist(Dev, Bool) when is_pid(Dev), is_boolean(Bool) ->
    port_call(Dev, {persist, Bool}).

%% @doc Set the uid owning the interface (`TUNSETOWNER').
-spec owner(dev(), non_neg_integer()) -> ok | {error, posix()}.
owner(Dev, Uid) when is_pid(Dev), is_integer(Uid), Uid >= 0 ->
    port_call(Dev, {owner, Uid}).

%% @doc Set the gid owning the interface (`TUNSETGROUP').
-spec group(dev(), non_neg_integer()) -> ok | {error, posix()}.
group(Dev, Gid) when is_pid(Dev), is_integer(Gid), Gid >= 0 ->
    port_call(Dev, {group, Gid}).

%% @doc Read a packet from the device named by a handle.
%% @equiv read(Handle, 65551)
-spec read(handle()) -> {ok, binary()} | {error, posix()}.
read(Handle) ->
    read(Handle, ?READ_SIZE).

%% @doc Read a packet (at most `Size' bytes) from the device named by a
%% handle (`getfd/1'), as `recv/2'. An unknown handle returns
%% `{error, ebadf}'.
%%
%% ```
%% 1> FD = tuncer:getfd(Dev).
%% 1
%% 2> tuncer:read(FD, 1500).
%% {error,eagain}
%% '''
-spec read(handle(), pos_integer()) -> {ok, binary()} | {error, posix()}.
read(Handle, Size) when is_integer(Handle), is_integer(Size), Size > 0 ->
    by_handle(Handle, fun(Dev) -> recv(Dev, Size) end).

%% @doc Write a packet to the device named by a handle, as `send/2'.
-spec write(handle(), iodata()) -> ok | {error, posix()}.
write(Handle, Data) when is_integer(Handle) ->
    by_handle(Handle, fun(Dev) -> send(Dev, Data) end).

%% @doc Write a packet to the device.
%%
%% Asynchronous: returns `ok' as soon as the packet is queued to the port.
%% A failed write arrives later as `{tuntap_error, Dev, Posix}' to the owner.
%% Packets larger than 65551 bytes return `{error, emsgsize}'; data that is
%% not iodata raises `badarg'.
%%
%% ```
%% 1> tuncer:send(Dev, Packet).
%% ok
%% '''
-spec send(dev(), iodata()) -> ok | {error, emsgsize}.
send(Dev, Data) when is_pid(Dev) ->
    case packet_size(Data) of
        N when N > ?MAX_PACKET -> {error, emsgsize};
        _ -> gen_server:cast(Dev, {send, Data})
    end;
send(_, _) ->
    erlang:error(badarg).

%% @doc Read a packet from a passive device.
%% @equiv recv(Dev, 65551)
-spec recv(dev()) -> {ok, binary()} | {error, posix()}.
recv(Dev) ->
    recv(Dev, ?READ_SIZE).

%% @doc Read a packet (at most `Size' bytes) from a passive device without
%% blocking: `{error, eagain}' when none is waiting. An active device
%% returns `{error, einval}'.
-spec recv(dev(), pos_integer()) -> {ok, binary()} | {error, posix()}.
recv(Dev, Size) when is_pid(Dev), is_integer(Size), Size > 0 ->
    call(Dev, {recv, Size}).

%% @doc Read a packet from a passive device, waiting up to `Timeout'
%% milliseconds: `{error, timeout}' when none arrived.
%%
%% ```
%% 1> tuncer:recv(Dev, 1500, 100).
%% {error,timeout}
%% '''
-spec recv(dev(), pos_integer(), timeout()) -> {ok, binary()} | {error, posix() | timeout}.
recv(Dev, Size, infinity) when is_pid(Dev), is_integer(Size), Size > 0 ->
    gen_server:call(Dev, {recv, Size, infinity}, infinity);
recv(Dev, Size, Timeout) when
    is_pid(Dev), is_integer(Size), Size > 0, is_integer(Timeout), Timeout >= 0
->
    gen_server:call(Dev, {recv, Size, Timeout}, Timeout + ?CALL_TIMEOUT).

%% @doc Set an option: `{active, true | false | once | N}'.
%%
%% `N' (-32768..32767) is added to the current counter; when the counter is
%% zero or less the device turns passive and `{tuntap_passive, Dev}' is sent
%% to the owner. Any other option raises `badarg'.
%%
%% ```
%% 1> tuncer:setopt(Dev, {active, 10}).
%% ok
%% '''
-spec setopt(dev(), {active, active()}) -> ok.
setopt(Dev, {active, A}) when is_pid(Dev), ?IS_ACTIVE(A) ->
    call(Dev, {active, A});
setopt(_, _) ->
    erlang:error(badarg).

%% @doc Make `Pid' the owner of the device: it is linked to the device and
%% receives its messages from now on. When the caller is the current owner,
%% the device messages already in its mailbox are moved to `Pid', in order.
-spec controlling_process(dev(), pid()) -> ok.
controlling_process(Dev, Pid) when is_pid(Dev), is_pid(Pid) ->
    case call(Dev, {controlling_process, Pid}) of
        ok ->
            ok;
        {hold, Hold} ->
            ok = flush_events(Dev, Pid),
            gen_server:cast(Dev, {release, Hold})
    end.

%% @doc Assign an IPv4 address (`/32', broadcast `x.x.x.255') and bring the
%% link up. An IPv6 address is assigned as `/64'.
%%
%% ```
%% 1> tuncer:up(Dev, "198.18.0.1").
%% ok
%% '''
-spec up(dev(), ip()) -> ok | {error, posix()}.
up(Dev, IP) when is_pid(Dev) ->
    case address(IP) of
        <<A, B, C, _>> = Addr -> configure(Dev, {addr_add, Addr, 32, [{broadcast, <<A, B, C, 255>>}]});
        Addr -> up(Dev, Addr, 64)
    end.

%% @doc Assign an IPv4 or IPv6 address with a prefix length and bring the
%% link up. IPv4 addresses get the broadcast address of their network.
%%
%% ```
%% 1> tuncer:up(Dev, {198,18,0,1}, 24).
%% ok
%% 2> tuncer:up(Dev, "2001:db8::1", 64).
%% ok
%% '''
-spec up(dev(), ip(), 0..128) -> ok | {error, posix()}.
up(Dev, IP, PrefixLen) when is_pid(Dev), is_integer(PrefixLen), PrefixLen >= 0 ->
    case address(IP) of
        <<_:32>> = Addr when PrefixLen =< 32 ->
            configure(Dev, {addr_add, Addr, PrefixLen, broadcast_opt(Addr, PrefixLen)});
        <<_:128>> = Addr when PrefixLen =< 128 ->
            configure(Dev, {addr_add, Addr, PrefixLen, []});
        _ ->
            erlang:error(badarg)
    end.

%% @doc Bring the link down.
-spec down(dev()) -> ok | {error, posix()}.
down(Dev) when is_pid(Dev) ->
    port_call(Dev, {link_set, [{up, false}]}).

%% @doc Set the remote address of a point-to-point link. The IPv4 address
%% assigned with `up/2,3' is replaced by the same address with this peer;
%% `{error, eaddrnotavail}' if none was assigned.
-spec dstaddr(dev(), ip()) -> ok | {error, posix()}.
dstaddr(Dev, IP) when is_pid(Dev) ->
    Peer = address4(IP),
    readdr(Dev, fun(Addr, _) -> {addr_add, Addr, 32, [{peer, Peer}]} end).

%% @doc Set the broadcast address of the IPv4 address assigned with
%% `up/2,3'; `{error, eaddrnotavail}' if none was assigned.
-spec broadcast(dev(), ip()) -> ok | {error, posix()}.
broadcast(Dev, IP) when is_pid(Dev) ->
    Broadcast = address4(IP),
    readdr(Dev, fun(Addr, Len) -> {addr_add, Addr, Len, [{broadcast, Broadcast}]} end).

%% @doc The MTU of the interface.
-spec mtu(dev()) -> pos_integer() | {error, posix()}.
mtu(Dev) when is_pid(Dev) ->
    case port_call(Dev, {link_info}) of
        {ok, Info} -> proplists:get_value(mtu, Info);
        {error, _} = Error -> Error
    end.

%% @doc Set the MTU of the interface.
-spec mtu(dev(), pos_integer()) -> ok | {error, posix()}.
mtu(Dev, MTU) when is_pid(Dev), is_integer(MTU), MTU > 0 ->
    port_call(Dev, {link_set, [{mtu, MTU}]}).

%%--------------------------------------------------------------------
%%% Callbacks
%%--------------------------------------------------------------------

%% @private
-spec init({pid(), binary(), [flag()], active()}) -> {ok, #state{}} | {stop, {shutdown, term()}}.
init({Owner, Ifname, Flags, Active}) ->
    process_flag(trap_exit, true),
    {ok, Ref} = tunctl_registry:alloc(self()),
    case open(Ref, Ifname, Flags) of
        {ok, Port, {Dev, FlagsInt}} ->
            true = link(Owner),
            State = #state{owner = Owner, port = Port, ref = Ref, dev = Dev, flags = FlagsInt},
            {ok, set_active(Active, State)};
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
handle_call(getfd, _From, #state{ref = Ref} = State) ->
    {reply, Ref, State};
handle_call(addr4, _From, #state{addr4 = undefined} = State) ->
    {reply, {error, eaddrnotavail}, State};
handle_call(addr4, _From, #state{addr4 = Addr4} = State) ->
    {reply, {ok, Addr4}, State};
handle_call(destroy, _From, State) ->
    {stop, normal, ok, State};
handle_call({port, Cmd}, From, #state{ref = Ref} = State) ->
    {noreply, port_request(erlang:insert_element(2, Cmd, Ref), From, Cmd, State)};
handle_call({active, A}, _From, State) ->
    {reply, ok, set_active(A, State)};
handle_call({recv, _}, _From, #state{active = A} = State) when A =/= false ->
    {reply, {error, einval}, State};
handle_call({recv, Size}, From, #state{ref = Ref} = State) ->
    case queue:out(State#state.queue) of
        {{value, Packet}, Queue} ->
            {reply, {ok, truncate(Packet, Size)}, State#state{queue = Queue}};
        {empty, _} ->
            {noreply, port_request({read, Ref, Size}, From, {read, Size}, State)}
    end;
handle_call({recv, _, _}, _From, #state{active = A} = State) when A =/= false ->
    {reply, {error, einval}, State};
handle_call({recv, Size, Timeout}, From, #state{waiters = Waiters} = State) ->
    case queue:out(State#state.queue) of
        {{value, Packet}, Queue} ->
            {reply, {ok, truncate(Packet, Size)}, State#state{queue = Queue}};
        {empty, _} ->
            Key = recv_timer(Timeout),
            {noreply, credit(State#state{waiters = Waiters ++ [{Key, From, Size}]})}
    end;
handle_call({controlling_process, Owner}, _From, #state{owner = Owner} = State) ->
    {reply, ok, State};
handle_call({controlling_process, Pid}, {Caller, _}, #state{owner = Owner} = State) ->
    true = unlink(Owner),
    true = link(Pid),
    case Caller of
        Owner ->
            % hold deliveries while the old owner moves its mailbox
            Hold = erlang:monitor(process, Caller),
            {reply, {hold, Hold}, credit(State#state{owner = Pid, hold = Hold})};
        _ ->
            {reply, ok, State#state{owner = Pid}}
    end;
handle_call(_Request, _From, State) ->
    {reply, {error, badarg}, State}.

%% @private
-spec handle_cast(term(), #state{}) -> {noreply, #state{}}.
handle_cast({send, Data}, #state{port = Port, ref = Ref} = State) ->
    true = tunctl_proto:command(Port, tunctl_proto:send(Ref, Data)),
    {noreply, State};
handle_cast({release, Hold}, #state{hold = Hold} = State) ->
    {noreply, release(State)};
handle_cast(_Msg, State) ->
    {noreply, State}.

%% @private
-spec handle_info(term(), #state{}) -> {noreply, #state{}} | {stop, term(), #state{}}.
handle_info({Port, {data, Frame}}, #state{port = Port} = State) ->
    {noreply, frame(tunctl_proto:decode(Frame), State)};
handle_info({Port, {exit_status, Status}}, #state{port = Port} = State) ->
    {stop, {tunctl_port_exit, Status}, State#state{port = undefined}};
handle_info({'EXIT', Port, Reason}, #state{port = Port} = State) ->
    {stop, {tunctl_port_exit, Reason}, State#state{port = undefined}};
handle_info({'EXIT', Owner, _}, #state{owner = Owner} = State) ->
    {stop, normal, State};
handle_info({timeout, Key, recv}, #state{waiters = Waiters} = State) ->
    case lists:keytake(Key, 1, Waiters) of
        {value, {Key, From, _}, Rest} ->
            gen_server:reply(From, {error, timeout}),
            {noreply, credit(State#state{waiters = Rest})};
        false ->
            {noreply, State}
    end;
handle_info({'DOWN', Hold, process, _, _}, #state{hold = Hold} = State) ->
    {noreply, release(State)};
handle_info(_Info, State) ->
    {noreply, State}.

%% @private
-spec terminate(term(), #state{}) -> ok.
terminate(_Reason, #state{port = Port, ref = Ref} = State) ->
    ok = close(Port, Ref, State#state.id),
    Reply = {error, ebadf},
    _ = [gen_server:reply(From, Reply) || {From, _} <- maps:values(State#state.pending)],
    _ = [gen_server:reply(From, Reply) || {_, From, _} <- State#state.waiters],
    tunctl_registry:free(Ref).

%%--------------------------------------------------------------------
%%% Port
%%--------------------------------------------------------------------

% Start the port and open the device, waiting for the answers.
open(Ref, Ifname, Flags) ->
    case tunctl_proto:open() of
        {ok, Port, _Caps} ->
            true = tunctl_proto:command(Port, tunctl_proto:call(0, {open, Ref, Ifname, Flags})),
            case wait_reply(Port, 0, ?CALL_TIMEOUT) of
                {ok, {Dev, FlagsInt}} when is_binary(Dev), is_integer(FlagsInt) ->
                    {ok, Port, {Dev, FlagsInt}};
                Error ->
                    ok = tunctl_proto:close(Port),
                    reason(Error)
            end;
        {error, _} = Error ->
            Error
    end.

reason({error, _} = Error) -> Error;
reason(Other) -> {error, {badreply, Other}}.

% Close the device (so that it is gone when destroy/1 returns), then the port.
close(undefined, _Ref, _Id) ->
    ok;
close(Port, Ref, Id) ->
    _ = (catch tunctl_proto:command(Port, tunctl_proto:call(Id, {close, Ref}))),
    _ = wait_reply(Port, Id, ?CLOSE_TIMEOUT),
    tunctl_proto:close(Port).

% Wait for {reply, Id, Result} outside the gen_server loop (init, terminate).
wait_reply(Port, Id, Timeout) ->
    receive
        {Port, {data, Frame}} ->
            case tunctl_proto:decode(Frame) of
                {reply, Id, Result} ->
                    Result;
                Other ->
                    ?LOG_DEBUG("tuncer: ignored ~p", [Other]),
                    wait_reply(Port, Id, Timeout)
            end;
        {Port, {exit_status, Status}} ->
            {error, {tunctl_port_exit, Status}};
        {'EXIT', Port, Reason} ->
            {error, {tunctl_port_exit, Reason}}
    after Timeout ->
        {error, timeout}
    end.

port_request(Cmd, From, Tag, #state{port = Port, id = Id, pending = Pending} = State) ->
    true = tunctl_proto:command(Port, tunctl_proto:call(Id, Cmd)),
    State#state{id = (Id + 1) band 16#7ffffff, pending = Pending#{Id => {From, Tag}}}.

frame({tuntap, Ref, Packet}, #state{ref = Ref, received = R} = State) ->
    packet(Packet, State#state{received = R + 1});
frame({reply, Id, Result}, #state{pending = Pending} = State) ->
    case maps:take(Id, Pending) of
        {{From, Tag}, Rest} ->
            reply(From, Tag, Result, State#state{pending = Rest});
        error ->
            ?LOG_WARNING("tuncer: reply to unknown call ~p: ~p", [Id, Result]),
            State
    end;
frame({tuntap_error, Ref, Posix}, #state{ref = Ref, owner = Owner} = State) ->
    Owner ! {tuntap_error, self(), Posix},
    State;
frame({tunctl_error, Reason}, #state{dev = Dev} = State) ->
    ?LOG_WARNING("tuncer ~s: tunctl_port: ~p", [Dev, Reason]),
    State;
frame(Frame, #state{dev = Dev} = State) ->
    ?LOG_WARNING("tuncer ~s: unexpected frame ~p", [Dev, Frame]),
    State.

% A read answered while packets were queued: the queued ones are older.
reply(From, {read, Size}, {ok, Packet}, #state{queue = Queue} = State) ->
    case queue:out(queue:in(Packet, Queue)) of
        {{value, First}, Rest} ->
            gen_server:reply(From, {ok, truncate(First, Size)}),
            State#state{queue = Rest}
    end;
reply(From, {read, Size}, {error, eagain} = Error, #state{queue = Queue} = State) ->
    case queue:out(Queue) of
        {{value, First}, Rest} ->
            gen_server:reply(From, {ok, truncate(First, Size)}),
            State#state{queue = Rest};
        {empty, _} ->
            gen_server:reply(From, Error),
            State
    end;
reply(From, Cmd, ok, State) ->
    gen_server:reply(From, ok),
    configured(Cmd, State);
reply(From, _Tag, Result, State) ->
    gen_server:reply(From, Result),
    State.

% Remember the IPv4 address, for dstaddr/2 and broadcast/2.
configured({addr_add, <<_:32>> = Addr, Len, _}, State) ->
    State#state{addr4 = {Addr, Len}};
configured({addr_del, Addr, Len}, #state{addr4 = {Addr, Len}} = State) ->
    State#state{addr4 = undefined};
configured(_, State) ->
    State.

%%--------------------------------------------------------------------
%%% Flow control
%%--------------------------------------------------------------------

packet(Packet, #state{active = false, waiters = [{Key, From, Size} | Rest]} = State) ->
    _ = erlang:cancel_timer(Key),
    gen_server:reply(From, {ok, truncate(Packet, Size)}),
    credit(State#state{waiters = Rest});
packet(Packet, #state{active = false, queue = Queue} = State) ->
    State#state{queue = queue:in(Packet, Queue)};
packet(Packet, #state{hold = Hold, queue = Queue} = State) when Hold =/= false ->
    State#state{queue = queue:in(Packet, Queue)};
packet(Packet, State) ->
    credit(deliver(Packet, State)).

deliver(Packet, #state{owner = Owner, active = Active} = State) ->
    Owner ! {tuntap, self(), Packet},
    case Active of
        true -> State;
        once -> State#state{active = false};
        1 -> passive(State);
        N -> State#state{active = N - 1}
    end.

passive(#state{owner = Owner} = State) ->
    Owner ! {tuntap_passive, self()},
    State#state{active = false}.

set_active(false, State) ->
    credit(State#state{active = false});
set_active(N, #state{active = Count} = State) when is_integer(N) ->
    case counter(Count) + N of
        C when C =< 0 -> credit(passive(State));
        C -> credit(drain(refuse_waiters(State#state{active = C})))
    end;
set_active(A, State) ->
    credit(drain(refuse_waiters(State#state{active = A}))).

counter(N) when is_integer(N) -> N;
counter(_) -> 0.

% recv/3 callers cannot wait on an active device.
refuse_waiters(#state{waiters = Waiters} = State) ->
    _ = [
        begin
            _ = erlang:cancel_timer(Key),
            gen_server:reply(From, {error, einval})
        end
     || {Key, From, _} <- Waiters
    ],
    State#state{waiters = []}.

% Deliver queued packets to an active owner.
drain(#state{active = false} = State) ->
    State;
drain(#state{hold = Hold} = State) when Hold =/= false ->
    State;
drain(#state{queue = Queue} = State) ->
    case queue:out(Queue) of
        {{value, Packet}, Rest} -> drain(deliver(Packet, State#state{queue = Rest}));
        {empty, _} -> State
    end.

release(#state{hold = Hold} = State) ->
    _ = erlang:demonitor(Hold, [flush]),
    credit(drain(State#state{hold = false})).

% The limit the port should have now.
desired(#state{hold = Hold}) when Hold =/= false -> false;
desired(#state{active = true}) -> true;
desired(#state{active = false, waiters = []}) -> false;
desired(#state{active = false, waiters = Waiters, received = R}) -> R + length(Waiters);
desired(#state{active = once, received = R}) -> R + 1;
desired(#state{active = N, received = R}) -> R + min(N, ?WINDOW).

% Send {active, Ref, Limit} when the limit changes, except for top-ups while
% enough credit is outstanding and for "stop" when the port is already
% stopped.
credit(#state{limit = Old, received = R, port = Port, ref = Ref} = State) ->
    case desired(State) of
        Old ->
            State;
        false when is_integer(Old), Old =< R ->
            State;
        New when is_integer(Old), is_integer(New), New > Old, Old - R >= ?LOW_WATER ->
            State;
        New ->
            true = tunctl_proto:command(Port, tunctl_proto:active(Ref, New)),
            State#state{limit = New}
    end.

recv_timer(infinity) -> make_ref();
recv_timer(Timeout) -> erlang:start_timer(Timeout, self(), recv).

truncate(Packet, Size) when byte_size(Packet) =< Size -> Packet;
truncate(Packet, Size) -> binary:part(Packet, 0, Size).

%%--------------------------------------------------------------------
%%% Internal functions
%%--------------------------------------------------------------------

start(Ifname, Flags, Active) ->
    case application:ensure_all_started(tunctl) of
        {ok, _} ->
            Args = {self(), Ifname, Flags, Active},
            case gen_server:start(?MODULE, Args, [{timeout, ?START_TIMEOUT}]) of
                {error, {shutdown, Reason}} -> {error, Reason};
                Result -> Result
            end;
        {error, _} = Error ->
            Error
    end.

call(Dev, Request) ->
    gen_server:call(Dev, Request, ?CALL_TIMEOUT).

port_call(Dev, Cmd) ->
    call(Dev, {port, Cmd}).

configure(Dev, AddrAdd) ->
    case port_call(Dev, AddrAdd) of
        ok -> port_call(Dev, {link_set, [{up, true}]});
        Error -> Error
    end.

% Replace the IPv4 address assigned by up/2,3 with a new one.
readdr(Dev, Fun) ->
    case call(Dev, addr4) of
        {ok, {Addr, Len}} ->
            case port_call(Dev, {addr_del, Addr, Len}) of
                ok -> port_call(Dev, Fun(Addr, Len));
                Error -> Error
            end;
        Error ->
            Error
    end.

by_handle(Handle, Fun) ->
    case tunctl_registry:lookup(Handle) of
        {ok, Dev} ->
            try
                Fun(Dev)
            catch
                exit:{noproc, _} -> {error, ebadf};
                exit:{normal, _} -> {error, ebadf}
            end;
        {error, _} = Error ->
            Error
    end.

flush_events(Dev, Pid) ->
    receive
        {tuntap, Dev, _} = Event ->
            Pid ! Event,
            flush_events(Dev, Pid);
        {tuntap_passive, Dev} = Event ->
            Pid ! Event,
            flush_events(Dev, Pid);
        {tuntap_error, Dev, _} = Event ->
            Pid ! Event,
            flush_events(Dev, Pid)
    after 0 ->
        ok
    end.

packet_size(Data) ->
    try
        iolist_size(Data)
    catch
        error:badarg -> erlang:error(badarg)
    end.

ifname(Name) ->
    try
        iolist_to_binary(Name)
    catch
        error:badarg -> erlang:error(badarg)
    end.

options([]) ->
    options([tap, no_pi, {active, false}]);
options(Options) ->
    {Flags, Active} = lists:foldl(fun option/2, {[], false}, Options),
    case lists:member(tun, Flags) orelse lists:member(tap, Flags) of
        true -> {lists:usort(Flags), Active};
        false -> {lists:usort([tap | Flags]), Active}
    end.

option(Flag, {Flags, Active}) when
    Flag =:= tun;
    Flag =:= tap;
    Flag =:= no_pi;
    Flag =:= one_queue;
    Flag =:= multi_queue;
    Flag =:= vnet_hdr;
    Flag =:= tun_excl
->
    {[Flag | Flags], Active};
option({active, A}, {Flags, _}) when ?IS_ACTIVE(A) ->
    {Flags, A};
option(_, _) ->
    erlang:error(badarg).

% An IP address as a 4 or 16 byte binary.
address({_, _, _, _} = IP) ->
    address_bin(IP);
address({_, _, _, _, _, _, _, _} = IP) ->
    address_bin(IP);
address(IP) when is_list(IP) ->
    case inet:parse_strict_address(IP) of
        {ok, Addr} -> address_bin(Addr);
        {error, einval} -> erlang:error(badarg)
    end;
address(IP) when is_binary(IP) ->
    case inet:parse_strict_address(binary_to_list(IP)) of
        {ok, Addr} -> address_bin(Addr);
        {error, einval} when byte_size(IP) =:= 4; byte_size(IP) =:= 16 -> IP;
        {error, einval} -> erlang:error(badarg)
    end;
address(_) ->
    erlang:error(badarg).

address4(IP) ->
    case address(IP) of
        <<_:32>> = Addr -> Addr;
        _ -> erlang:error(badarg)
    end.

address_bin({A, B, C, D} = IP) ->
    case inet:is_ipv4_address(IP) of
        true -> <<A, B, C, D>>;
        false -> erlang:error(badarg)
    end;
address_bin({A, B, C, D, E, F, G, H} = IP) ->
    case inet:is_ipv6_address(IP) of
        true -> <<A:16, B:16, C:16, D:16, E:16, F:16, G:16, H:16>>;
        false -> erlang:error(badarg)
    end.

broadcast_opt(<<Addr:32>>, Len) when Len < 31 ->
    Mask = (1 bsl (32 - Len)) - 1,
    [{broadcast, <<(Addr bor Mask):32>>}];
broadcast_opt(_, _) ->
    [].
