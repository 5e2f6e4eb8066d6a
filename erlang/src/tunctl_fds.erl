%% @private
%% @doc The descriptors `tuncer:getfd/1' gives out, and their keeper.
%%
%% A descriptor is one end (`User') of an `AF_UNIX' `SOCK_SEQPACKET' pair
%% this node makes with the `socket' module; the other end (`Peer') is
%% handed to the device's port, which relays: one packet per message each
%% way (doc/design.md, "getfd/1: a relayed socket"). The BEAM never holds
%% the TUN descriptor.
%%
%% The hand-over (`prepare/1', `adopt/3'): the port listens on a fresh random abstract
%% address and tells its name over its pipe (`relay_listen'); this node
%% connects to it and sends a nonce read from `/dev/urandom' with `Peer'
%% attached, then sends the same nonce over the pipe (`relay_accept'): the
%% port takes the descriptor only from the connection that carried the
%% nonce, so a local user connecting to the address gets nothing, and this
%% node only ever connects to an address the port bound before naming it.
%% Nothing is received from the outside: the VM's descriptor table gets
%% only the sockets it made itself.
%%
%% This process owns every `User' socket (a `socket' is closed when its
%% owner exits, and the device process may exit while a port opened on
%% the descriptor still uses it). When the device process is gone, the
%% port has closed its end, `User' reads end-of-file, and a port opened on
%% it with `open_port({fd, Fd, Fd}, _)' closes; the socket is then closed
%% here, once no port of the node is still open on the descriptor
%% (checked by the port's name, `"Fd/Fd"'), so the number cannot be reused
%% under a live port. So each device holds at most one descriptor, and only
%% while it exists (or a port still uses it).
-module(tunctl_fds).
-behaviour(gen_server).

-export([start_link/0, prepare/1, adopt/3, lookup/1, with_device/2, read/2, held/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-define(TAB, ?MODULE).
-define(RETRY, 500).
%% How often the ports are looked at, while descriptors are held.
-define(SCAN, 100).
-define(TIMEOUT, 5000).
%% Send and receive buffers of the user's end (capped by the kernel).
-define(SOCKBUF, 4194304).

-type fd() :: non_neg_integer().
-export_type([fd/0]).

-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @doc Make the pair and hand the peer to the port listening at `Name'
%% (the answer to `relay_listen'): the user's end and the nonce to send in
%% `relay_accept'.
-spec prepare(binary()) -> {ok, socket:socket(), binary()} | {error, term()}.
prepare(Name) when is_binary(Name) ->
    case pair() of
        {ok, User, Peer} ->
            Nonce = random(),
            Sent = hand_over(Name, Peer, Nonce),
            _ = socket:close(Peer),
            case Sent of
                ok ->
                    {ok, User, Nonce};
                {error, _} = Error ->
                    _ = socket:close(User),
                    Error
            end;
        {error, _} = Error ->
            Error
    end.

%% @doc After the answer to `relay_accept': keep the user's end for the
%% device process `Dev' and return its descriptor, or close it.
-spec adopt(ok | {error, term()}, socket:socket(), pid()) -> {ok, fd()} | {error, term()}.
adopt(ok, User, Dev) ->
    ok = socket:setopt(User, otp, controlling_process, whereis(?MODULE)),
    gen_server:call(?MODULE, {adopt, User, Dev});
adopt({error, _} = Error, User, _Dev) ->
    _ = socket:close(User),
    Error.

%% @doc The device process a descriptor from `open/3' belongs to.
-spec lookup(term()) -> {ok, pid()} | {error, ebadf}.
lookup(Fd) when is_integer(Fd) ->
    % badarg: no such descriptor, or no table (the keeper is not running)
    try {ok, ets:lookup_element(?TAB, Fd, 2)}
    catch error:badarg -> {error, ebadf}
    end;
lookup(_) ->
    {error, ebadf}.

%% @doc Run `Fun(Dev)' on the device process of a descriptor;
%% `{error, ebadf}' when there is none, or when it goes away during the
%% call.
-spec with_device(term(), fun((pid()) -> Result)) -> Result | {error, ebadf}.
with_device(Fd, Fun) ->
    case lookup(Fd) of
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

%% @doc Read the next message of a descriptor (a packet the port relayed),
%% at most `Size' bytes of it, without blocking: `{error, eagain}' when
%% none is waiting, `{error, ebadf}' for an integer that is not one of
%% ours.
-spec read(term(), pos_integer()) -> {ok, binary()} | {error, atom()}.
read(Fd, Size) when is_integer(Fd) ->
    try ets:lookup(?TAB, Fd) of
        [{Fd, _, S}] ->
            case socket:recv(S, 0, [], 0) of
                % end of file: the port closed its end (no packet is empty)
                {ok, <<>>} -> {error, ebadf};
                {ok, Packet} when byte_size(Packet) > Size -> {ok, binary:part(Packet, 0, Size)};
                {ok, Packet} -> {ok, Packet};
                {error, timeout} -> {error, eagain};
                {error, closed} -> {error, ebadf};
                {error, Reason} when is_atom(Reason) -> {error, Reason};
                {error, _} -> {error, eio}
            end;
        [] ->
            {error, ebadf}
    catch
        error:badarg -> {error, ebadf}
    end;
read(_, _) ->
    {error, ebadf}.

%% @doc The descriptors this node holds for `getfd/1', after closing those
%% that can be closed now.
-spec held() -> [fd()].
held() ->
    gen_server:call(?MODULE, held).

%%--------------------------------------------------------------------
%%% The pair and the hand-over
%%--------------------------------------------------------------------

% A connected SOCK_SEQPACKET pair, through a listening socket at a random
% abstract address that is closed at once.
pair() ->
    Addr = #{family => local, path => <<0, "tunctl-vm-", (binary:encode_hex(random()))/binary>>},
    with_socket(fun(L) ->
        ok = ok(socket:bind(L, Addr)),
        ok = ok(socket:listen(L, 1)),
        {ok, User} = ok(socket:open(local, seqpacket, default)),
        try
            ok = ok(socket:connect(User, Addr)),
            {ok, Peer} = ok(socket:accept(L, ?TIMEOUT)),
            _ = [socket:setopt(User, {socket, O}, ?SOCKBUF) || O <- [sndbuf, rcvbuf]],
            {ok, User, Peer}
        catch
            throw:{error, _} = Error ->
                _ = socket:close(User),
                throw(Error)
        end
    end).

hand_over(Name, Peer, Nonce) ->
    with_socket(fun(S) ->
        {ok, PeerFd} = ok(socket:getopt(Peer, otp, fd)),
        ok = ok(socket:connect(S, #{family => local, path => Name})),
        Ctrl = [#{level => socket, type => rights, data => <<PeerFd:32/native>>}],
        ok(socket:sendmsg(S, #{iov => [Nonce], ctrl => Ctrl}, ?TIMEOUT))
    end).

% Run Fun with a fresh socket, closed afterwards; {error, _} on failure.
with_socket(Fun) ->
    case socket:open(local, seqpacket, default) of
        {ok, S} ->
            try
                Fun(S)
            catch
                throw:{error, _} = Error -> Error
            after
                socket:close(S)
            end;
        {error, _} = Error ->
            Error
    end.

ok(ok) -> ok;
ok({ok, _} = Ok) -> Ok;
ok({error, _} = Error) -> throw(Error).

random() ->
    {ok, F} = file:open("/dev/urandom", [read, raw, binary]),
    try
        {ok, B} = file:read(F, 16),
        B
    after
        file:close(F)
    end.

%%--------------------------------------------------------------------
%%% Keeper
%%--------------------------------------------------------------------

-record(keeper, {
    % descriptor => {socket, device process}
    open = #{} :: #{fd() => {socket:socket(), pid()}},
    % descriptors of devices that are gone, still used by a port
    closing = #{} :: #{fd() => socket:socket()},
    % open descriptors a port is open on (their device relays to them)
    read = [] :: [fd()],
    scan = false :: boolean()
}).

%% @private
-spec init([]) -> {ok, #keeper{}}.
init([]) ->
    ?TAB = ets:new(?TAB, [named_table, protected, set, {read_concurrency, true}]),
    {ok, #keeper{}}.

%% @private
-spec handle_call(term(), gen_server:from(), #keeper{}) -> {reply, term(), #keeper{}}.
handle_call({adopt, User, Dev}, _From, #keeper{open = Open} = K) ->
    {ok, Fd} = socket:getopt(User, otp, fd),
    _ = erlang:monitor(process, Dev),
    true = ets:insert(?TAB, {Fd, Dev, User}),
    {reply, {ok, Fd}, scan_later(K#keeper{open = Open#{Fd => {User, Dev}}})};
handle_call(held, _From, K0) ->
    % a device that has exited is gone, whether or not its 'DOWN' has
    % arrived yet
    Dead = lists:usort([D || {_, D} <- maps:values(K0#keeper.open), not is_process_alive(D)]),
    K = reap(lists:foldl(fun gone/2, K0, Dead)),
    {reply, lists:sort(maps:keys(K#keeper.open) ++ maps:keys(K#keeper.closing)), K};
handle_call(_Request, _From, K) ->
    {reply, {error, badarg}, K}.

%% @private
-spec handle_cast(term(), #keeper{}) -> {noreply, #keeper{}}.
handle_cast(_Msg, K) ->
    {noreply, K}.

%% @private
-spec handle_info(term(), #keeper{}) -> {noreply, #keeper{}}.
handle_info({'DOWN', _, process, Dev, _}, K) ->
    {noreply, reap(gone(Dev, K))};
handle_info(reap, K) ->
    {noreply, reap(K)};
handle_info(scan, K) ->
    {noreply, scan_later(scan(K#keeper{scan = false}))};
handle_info(_Info, K) ->
    {noreply, K}.

% The descriptors of a device that is gone wait in closing until no port
% uses them.
gone(Dev, #keeper{open = Open, closing = Closing} = K) ->
    Gone = maps:map(fun(_, {S, _}) -> S end, maps:filter(fun(_, {_, D}) -> D =:= Dev end, Open)),
    _ = [ets:delete(?TAB, Fd) || Fd <- maps:keys(Gone)],
    K#keeper{
        open = maps:without(maps:keys(Gone), Open),
        closing = maps:merge(Closing, Gone),
        read = K#keeper.read -- maps:keys(Gone)
    }.

% A device relays packets to its descriptor only while a port is open on
% it (tunctl_port's {relay, Ref, Bool}): otherwise they would pile up
% where nobody reads, instead of waiting in the device for recv/read.
scan(#keeper{open = Open, read = Read0} = K) ->
    InUse = ports_fds(),
    Read = [Fd || Fd <- maps:keys(Open), lists:member(Fd, InUse)],
    _ = [Dev ! {?MODULE, relay, Fd, lists:member(Fd, Read)} || {Fd, {_, Dev}} <- maps:to_list(changed(Open, Read0, Read))],
    K#keeper{read = Read}.

changed(Open, Old, New) ->
    maps:filter(fun(Fd, _) -> lists:member(Fd, Old) =/= lists:member(Fd, New) end, Open).

scan_later(#keeper{open = Open, scan = false} = K) when map_size(Open) > 0 ->
    _ = erlang:send_after(?SCAN, self(), scan),
    K#keeper{scan = true};
scan_later(K) ->
    K.

% Close the descriptors of gone devices that no port uses; try again later
% for the others.
reap(#keeper{closing = Closing} = K) when map_size(Closing) =:= 0 ->
    K;
reap(#keeper{closing = Closing} = K) ->
    InUse = ports_fds(),
    {Busy, Free} = maps:fold(
        fun(Fd, S, {B, F}) ->
            case lists:member(Fd, InUse) of
                true -> {B#{Fd => S}, F};
                false -> {B, [S | F]}
            end
        end,
        {#{}, []},
        Closing
    ),
    _ = [socket:close(S) || S <- Free],
    _ = map_size(Busy) > 0 andalso erlang:send_after(?RETRY, self(), reap),
    K#keeper{closing = Busy}.

% The descriptors the node's {fd, In, Out} ports use (their name is
% "In/Out").
ports_fds() ->
    lists:append([fd_port(erlang:port_info(P, name)) || P <- erlang:ports()]).

fd_port({name, Name}) ->
    case string:split(Name, "/") of
        [In, Out] ->
            try
                [list_to_integer(In), list_to_integer(Out)]
            catch
                error:badarg -> []
            end;
        _ ->
            []
    end;
fd_port(_) ->
    [].
