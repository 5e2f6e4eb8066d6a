%% @private
%% @doc Top supervisor: owns the handle registry. Devices (`tuncer'
%% processes) are not supervised: each one is linked to the process that
%% created it, as in the original tunctl.
-module(tunctl_sup).
-behaviour(supervisor).

-export([start_link/0]).
-export([init/1]).

-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

-spec init([]) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init([]) ->
    Registry = #{
        id => tunctl_registry,
        start => {tunctl_registry, start_link, []},
        restart => permanent,
        shutdown => 5000,
        type => worker,
        modules => [tunctl_registry]
    },
    Fds = Registry#{id => tunctl_fds, start => {tunctl_fds, start_link, []}, modules => [tunctl_fds]},
    {ok, {#{strategy => one_for_one, intensity => 5, period => 10}, [Registry, Fds]}}.
