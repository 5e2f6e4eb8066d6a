%% @doc Low-level interface of msantos/tunctl, kept for compatibility.
%%
%% In the original, `tunctl' returned a real file descriptor and configured
%% interfaces with ioctl(2). Here the descriptor lives in the `tunctl_port'
%% program, so this module is a thin layer over `tuncer':
%%
%% <ul>
%% <li>`create/0,1,2' start a `tuncer' process owned by (and linked to) the
%%     caller and return its integer handle (`tuncer:getfd/1') in place of
%%     the file descriptor. The device goes away with `close/1' or when the
%%     caller exits.</li>
%% <li>`persist/2', `owner/2', `group/2', `close/1' take that handle;
%%     an unknown handle returns `{error, ebadf}'.</li>
%% <li>`up/2', `down/1' take a device name, and only know devices created
%%     through this application (others return `{error, enodev}').</li>
%% </ul>
%%
%% Use `tuncer:read/1,2' and `tuncer:write/2' with the handle for I/O.
-module(tunctl).

-export([
    create/0, create/1, create/2,
    close/1,
    persist/2, owner/2, group/2,
    up/2, down/1
]).

%% @doc Create a TAP device named by the kernel.
%% @equiv create(<<>>)
-spec create() -> {ok, tuncer:handle(), binary()} | {error, term()}.
create() ->
    create(<<>>).

%% @doc Create a device with the default options.
%% @equiv create(Ifname, [])
-spec create(iodata()) -> {ok, tuncer:handle(), binary()} | {error, term()}.
create(Ifname) ->
    create(Ifname, []).

%% @doc Create a device (options as `tuncer:create/2') and return its handle
%% and name.
%%
%% ```
%% 1> {ok, FD, Dev} = tunctl:create(<<"tap3">>, [tap, no_pi]).
%% {ok,1,<<"tap3">>}
%% '''
-spec create(iodata(), [tuncer:option()]) -> {ok, tuncer:handle(), binary()} | {error, term()}.
create(Ifname, Flags) ->
    case tuncer:create(Ifname, Flags) of
        {ok, Dev} -> {ok, tuncer:getfd(Dev), tuncer:devname(Dev)};
        {error, _} = Error -> Error
    end.

%% @doc Close the device named by a handle.
-spec close(tuncer:handle()) -> ok | {error, ebadf}.
close(FD) ->
    by_handle(FD, fun tuncer:destroy/1).

%% @doc Keep the interface after it is closed (`TUNSETPERSIST').
-spec persist(tuncer:handle(), boolean()) -> ok | {error, atom()}.
persist(FD, Bool) when is_boolean(Bool) ->
    by_handle(FD, fun(Dev) -> tuncer:persist(Dev, Bool) end).

%% @doc Set the uid owning the interface.
-spec owner(tuncer:handle(), non_neg_integer()) -> ok | {error, atom()}.
owner(FD, Uid) when is_integer(Uid), Uid >= 0 ->
    by_handle(FD, fun(Dev) -> tuncer:owner(Dev, Uid) end).

%% @doc Set the gid owning the interface.
-spec group(tuncer:handle(), non_neg_integer()) -> ok | {error, atom()}.
group(FD, Gid) when is_integer(Gid), Gid >= 0 ->
    by_handle(FD, fun(Dev) -> tuncer:group(Dev, Gid) end).

%% @doc Assign an IPv4 address to the named device and bring it up
%% (as `tuncer:up/2').
-spec up(iodata(), inet:ip_address() | string()) -> ok | {error, atom()}.
up(Device, IP) ->
    by_name(Device, fun(Dev) -> tuncer:up(Dev, IP) end).

%% @doc Bring the named device down.
-spec down(iodata()) -> ok | {error, atom()}.
down(Device) ->
    by_name(Device, fun tuncer:down/1).

by_handle(FD, Fun) ->
    case tunctl_registry:lookup(FD) of
        {ok, Dev} -> Fun(Dev);
        {error, _} = Error -> Error
    end.

by_name(Device, Fun) ->
    Name = iolist_to_binary(Device),
    Devs = [Dev || {_, Dev} <- tunctl_registry:handles(), devname(Dev) =:= Name],
    case Devs of
        [Dev | _] -> Fun(Dev);
        [] -> {error, enodev}
    end.

devname(Dev) ->
    try
        tuncer:devname(Dev)
    catch
        exit:_ -> undefined
    end.
