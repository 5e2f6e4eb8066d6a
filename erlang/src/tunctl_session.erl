%% @private
%% @doc The port session of a device process: it starts `tunctl_port',
%% checks its handshake, numbers requests and matches their replies, and
%% maps the port's exit to a reason. It knows no command: commands and
%% frames are `tunctl_proto''s, what they mean is `tuncer''s.
%%
%% A session is a value kept in the state of the process that owns the
%% port (the port's messages go to it). Requests are asynchronous
%% (`request/3': the reply comes back through `handle/2' with the tag given
%% at request time); `call/3' is a request followed by a wait for its
%% reply, using `handle/2' on every message of the port, so that start-up
%% (before the gen_server loop runs) and close (in `terminate/2') talk to
%% the port exactly as the loop does.
%%
%% The port's exit becomes `{tunctl_port_exit, Status}': `Status' is the
%% exit status, or the reason of the port's `EXIT' signal.
-module(tunctl_session).

-include_lib("kernel/include/logger.hrl").

-export([
    open/1, open/2, open/3, start/2,
    request/3,
    call/3,
    command/2,
    handle/2,
    pending/1,
    close/2
]).

-define(HANDSHAKE_TIMEOUT, 5000).
-define(CLOSE_TIMEOUT, 2000).
-define(MAX_ID, 16#7ffffff).

-record(session, {
    % undefined once the port has exited
    port :: port() | undefined,
    id = 1 :: non_neg_integer(),
    % the tag of each request waiting for its reply
    pending = #{} :: #{non_neg_integer() => term()}
}).

-opaque session() :: #session{}.
-type event() ::
    {event, tunctl_proto:frame() | {error, badetf}}
    | {reply, Tag :: term(), Result :: term(), session()}
    | {exit, {tunctl_port_exit, term()}, session()}
    | ignore.

-export_type([session/0, event/0]).

%%--------------------------------------------------------------------
%%% API
%%--------------------------------------------------------------------

%% @doc Start `tunctl_port' with the extra arguments `Args' (for example
%% `["-allow-netns"]') and wait for its handshake.
%%
%% The program is the `port_program' environment variable of the `tunctl'
%% application, else `priv/tunctl_port'. When the environment variable
%% `policy' is set, the program is started with `-policy Path' as well.
-spec open([string()]) -> {ok, session()} | {error, term()}.
open(Args) when is_list(Args) ->
    start(Args, []).

%% @doc As `open/1', with extra `open_port/2' options (`tuncer:create/2''s
%% `{port_options, PortOpts}').
-spec start([string()], tuncer:port_options()) -> {ok, session()} | {error, term()}.
start(Args, PortOpts) when is_list(Args), is_list(PortOpts) ->
    open(program(), policy() ++ Args, PortOpts).

%% @doc `open/3' without port options.
-spec open(file:filename_all(), [string()]) -> {ok, session()} | {error, term()}.
open(Path, Args) when is_list(Args) ->
    open(Path, Args, []).

%% @doc Start the port program `Path' with the arguments `Args' and the
%% extra `open_port/2' options `PortOpts', and wait for its handshake: `{error, enoent}' when there is no such program,
%% `{error, {version_mismatch, Theirs, Ours}}' when it speaks another
%% version of the protocol.
-spec open(file:filename_all(), [string()], tuncer:port_options()) -> {ok, session()} | {error, term()}.
open(Path, Args, PortOpts) when is_list(Args), is_list(PortOpts) ->
    case filelib:is_regular(Path) of
        false ->
            {error, enoent};
        true ->
            try
                erlang:open_port({spawn_executable, Path}, [
                    {packet, 4}, binary, exit_status, use_stdio, {args, Args} | PortOpts
                ])
            of
                Port -> hello(#session{port = Port})
            catch
                error:Reason -> {error, Reason}
            end
    end.

%% @doc Send `{call, Id, Cmd}'; its reply comes back from `handle/2' as
%% `{reply, Tag, Result, Session}'.
-spec request(session(), tuple(), term()) -> session().
request(#session{id = Id, pending = Pending} = S, Cmd, Tag) ->
    command(S, tunctl_proto:call(Id, Cmd)),
    S#session{id = (Id + 1) band ?MAX_ID, pending = Pending#{Id => Tag}}.

%% @doc A request, then wait (at most `Timeout' ms in all) for its
%% reply. Other frames that arrive meanwhile are dropped (start-up and
%% close: no packet is wanted then); other requests stay pending.
-spec call(session(), tuple(), timeout()) -> {term(), session()}.
call(#session{id = Id} = S, Cmd, Timeout) ->
    Tag = {call, Id},
    wait(Tag, request(S, Cmd, Tag), deadline(Timeout)).

%% @doc Send one frame that has no reply (data path, `{active, Ref, N}').
-spec command(session(), iodata()) -> ok.
command(#session{port = Port}, Frame) ->
    true = erlang:port_command(Port, Frame),
    ok.

%% @doc What a message of the owning process means for the session: a
%% frame from the port (a reply nobody waits for included), the reply to a
%% request, the port's exit, or `ignore' (not a message of the port).
-spec handle(term(), session()) -> event().
handle({Port, {data, Frame}}, #session{port = Port} = S) ->
    case tunctl_proto:decode(Frame) of
        {reply, Id, Result} -> reply(Id, Result, S);
        Decoded -> {event, Decoded}
    end;
handle({Port, {exit_status, Status}}, #session{port = Port} = S) ->
    {exit, {tunctl_port_exit, Status}, S#session{port = undefined}};
handle({'EXIT', Port, Reason}, #session{port = Port} = S) when Port =/= undefined ->
    {exit, {tunctl_port_exit, Reason}, S#session{port = undefined}};
handle(_Msg, _S) ->
    ignore.

%% @doc The tags of the requests still waiting for their reply.
-spec pending(session()) -> [term()].
pending(#session{pending = Pending}) ->
    maps:values(Pending).

%% @doc Send a last command (`undefined': none) and wait for its reply,
%% then close the port. Idempotent; nothing is sent once the port exited.
-spec close(session(), tuple() | undefined) -> ok.
close(#session{port = undefined}, _Cmd) ->
    ok;
close(#session{port = Port} = S, Cmd) ->
    _ = Cmd =:= undefined orelse (catch call(S, Cmd, ?CLOSE_TIMEOUT)),
    close_port(Port).

%%--------------------------------------------------------------------
%%% Internal functions
%%--------------------------------------------------------------------

hello(#session{port = Port} = S) ->
    Result =
        case next(S, ?HANDSHAKE_TIMEOUT) of
            {event, Frame} -> tunctl_proto:handshake(Frame);
            {exit, Reason, _} -> {error, Reason};
            timeout -> {error, {tunctl_port_handshake, timeout}}
        end,
    case Result of
        {ok, _Caps} ->
            {ok, S};
        {error, _} = Error ->
            ok = close_port(Port),
            Error
    end.

% Wait for the reply Tag until Deadline (monotonic ms, or infinity): frames
% that arrive meanwhile do not extend the wait.
wait(Tag, S, Deadline) ->
    case next(S, remaining(Deadline)) of
        {reply, Tag, Result, S1} ->
            {Result, S1};
        {exit, Reason, S1} ->
            {{error, Reason}, S1};
        timeout ->
            {{error, timeout}, S};
        Other ->
            ?LOG_DEBUG("tunctl_session: ignored ~p", [Other]),
            wait(Tag, S, Deadline)
    end.

deadline(infinity) -> infinity;
deadline(Timeout) -> erlang:monotonic_time(millisecond) + Timeout.

remaining(infinity) -> infinity;
remaining(Deadline) -> max(0, Deadline - erlang:monotonic_time(millisecond)).

% The next message of the port, through handle/2.
next(#session{port = Port} = S, Timeout) ->
    receive
        {Port, {data, _}} = Msg -> handle(Msg, S);
        {Port, {exit_status, _}} = Msg -> handle(Msg, S);
        {'EXIT', Port, _} = Msg -> handle(Msg, S)
    after Timeout ->
        timeout
    end.

reply(Id, Result, #session{pending = Pending} = S) ->
    case maps:take(Id, Pending) of
        {Tag, Rest} ->
            {reply, Tag, Result, S#session{pending = Rest}};
        error ->
            {event, {reply, Id, Result}}
    end.

close_port(Port) ->
    _ = (catch erlang:port_close(Port)),
    receive
        {'EXIT', Port, _} -> ok
    after 0 -> ok
    end.

policy() ->
    case application:get_env(tunctl, policy) of
        {ok, Path} -> ["-policy", unicode:characters_to_list(Path)];
        undefined -> []
    end.

program() ->
    case application:get_env(tunctl, port_program) of
        {ok, Path} ->
            Path;
        undefined ->
            case code:priv_dir(tunctl) of
                {error, bad_name} -> "priv/tunctl_port";
                Dir -> filename:join(Dir, "tunctl_port")
            end
    end.
