%% @private
%% @doc Handle registry.
%%
%% A handle is the `Ref' that names the device inside its port
%% (doc/protocol.md); users never see it (`tuncer:getfd/1' returns a
%% descriptor, `tunctl_fds'). The table also holds each open device's
%% `IFF_*' flags, for `tuncer:send/2'. Handles are positive, below 2^31, and
%% allocated from a counter that wraps, skipping handles in use.
%%
%% The table is public and read-concurrent: lookups never go through this
%% process. Allocation does, so that the registry can monitor the device
%% process and free its handle however it exits (even `kill').
-module(tunctl_registry).
-behaviour(gen_server).

-export([start_link/0, alloc/1, free/1, lookup/1, handles/0, set_flags/1, flags/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-define(TAB, ?MODULE).
-define(COUNTER, '$counter').
-include("tunctl_proto.hrl").

-define(MAX_HANDLE, ?TUNCTL_MAX_REF).

-type handle() :: 1..?TUNCTL_MAX_REF.
-export_type([handle/0]).

-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @doc Allocate a handle for the device process `Pid'.
-spec alloc(pid()) -> {ok, handle()}.
alloc(Pid) when is_pid(Pid) ->
    gen_server:call(?MODULE, {alloc, Pid}).

%% @doc Free the handle of the calling device process. The registry also
%% frees it when the process exits.
-spec free(handle()) -> ok.
free(Handle) when is_integer(Handle) ->
    _ = (catch ets:delete_object(?TAB, {Handle, self()})),
    ok.

%% @doc The device process owning `Handle'.
-spec lookup(term()) -> {ok, pid()} | {error, ebadf}.
lookup(Handle) when is_integer(Handle), Handle > 0, Handle =< ?MAX_HANDLE ->
    % badarg: no such handle, or no table (the registry is not running)
    try {ok, ets:lookup_element(?TAB, Handle, 2)}
    catch error:badarg -> {error, ebadf}
    end;
lookup(_) ->
    {error, ebadf}.

%% @doc Record the `IFF_*' flags of the calling device process
%% (`undefined': forget them), for `flags/1'.
-spec set_flags(non_neg_integer() | undefined) -> ok.
set_flags(undefined) ->
    true = ets:delete(?TAB, self()),
    ok;
set_flags(Flags) when is_integer(Flags) ->
    true = ets:insert(?TAB, {self(), Flags}),
    ok.

%% @doc The flags of a device process that is open, without asking it
%% (`tuncer:send/2' checks packets with them); `error' when it is gone.
-spec flags(pid()) -> {ok, non_neg_integer()} | error.
flags(Dev) ->
    try {ok, ets:lookup_element(?TAB, Dev, 2)}
    catch error:badarg -> error
    end.

%% @doc All handles in use, with their device processes.
-spec handles() -> [{handle(), pid()}].
handles() ->
    try
        ets:select(?TAB, [{{'$1', '$2'}, [{is_integer, '$1'}], [{{'$1', '$2'}}]}])
    catch
        error:badarg -> []
    end.

%%--------------------------------------------------------------------
%%% Callbacks
%%--------------------------------------------------------------------
-spec init([]) -> {ok, #{}}.
init([]) ->
    ?TAB = ets:new(?TAB, [named_table, public, set, {read_concurrency, true}]),
    true = ets:insert(?TAB, {?COUNTER, 0}),
    {ok, #{}}.

-spec handle_call(term(), gen_server:from(), map()) -> {reply, term(), map()}.
handle_call({alloc, Pid}, _From, Monitors) ->
    Handle = next(Pid),
    Mref = erlang:monitor(process, Pid),
    {reply, {ok, Handle}, Monitors#{Mref => Handle}};
handle_call(_Request, _From, Monitors) ->
    {reply, {error, badarg}, Monitors}.

-spec handle_cast(term(), map()) -> {noreply, map()}.
handle_cast(_Msg, Monitors) ->
    {noreply, Monitors}.

-spec handle_info(term(), map()) -> {noreply, map()}.
handle_info({'DOWN', Mref, process, Pid, _}, Monitors) ->
    case maps:take(Mref, Monitors) of
        {Handle, Rest} ->
            true = ets:delete_object(?TAB, {Handle, Pid}),
            true = ets:delete(?TAB, Pid),
            {noreply, Rest};
        error ->
            {noreply, Monitors}
    end;
handle_info(_Info, Monitors) ->
    {noreply, Monitors}.

%%--------------------------------------------------------------------
%%% Internal functions
%%--------------------------------------------------------------------
next(Pid) ->
    Handle = ets:update_counter(?TAB, ?COUNTER, {2, 1, ?MAX_HANDLE, 1}),
    case ets:insert_new(?TAB, {Handle, Pid}) of
        true -> Handle;
        false -> next(Pid)
    end.
