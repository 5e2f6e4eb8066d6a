#!/usr/bin/env escript
%% -*- erlang -*-
%% Check the output of `rebar3 edoc': every public module (one not marked
%% @private or @hidden) has a page, and every function it exports (except
%% module_info/0,1 and functions marked @private, such as behaviour
%% callbacks) is on that page with a description (or an @equiv).
%%
%%   escript scripts/check-edoc.escript erlang/src erlang/_build/default/lib/tunctl/ebin erlang/doc
-include_lib("xmerl/include/xmerl.hrl").

main([SrcDir, EbinDir, DocDir]) ->
    Files = lists:sort(filelib:wildcard(filename:join(SrcDir, "*.erl"))),
    Problems = lists:append([check(F, EbinDir, DocDir) || F <- Files]),
    case Problems of
        [] ->
            io:format("edoc: every exported function of ~b modules documented~n", [length(Files)]);
        _ ->
            [io:format("edoc: ~s~n", [P]) || P <- Problems],
            halt(1)
    end;
main(_) ->
    io:format(standard_error, "usage: check-edoc.escript SRC_DIR EBIN_DIR DOC_DIR~n", []),
    halt(2).

check(File, EbinDir, DocDir) ->
    Mod = list_to_atom(filename:basename(File, ".erl")),
    {_, Public} = edoc:get_doc(File, [{private, false}, {hidden, false} | pp(File)]),
    {_, All} = edoc:get_doc(File, [{private, true}, {hidden, true} | pp(File)]),
    case module_hidden(File) of
        true ->
            [];
        false ->
            Exports = exports(EbinDir, Mod),
            Documented = functions(Public),
            % exported functions marked @private/@hidden: on purpose
            Private = [FA || {FA, _} <- functions(All), not lists:keymember(FA, 1, Documented)],
            Page = filename:join(DocDir, atom_to_list(Mod) ++ ".html"),
            case file:read_file(Page) of
                {ok, Html} ->
                    [fmt("~s:~s/~b exported but not documented", [Mod, F, A])
                     || {F, A} = FA <- Exports, not lists:keymember(FA, 1, Documented),
                        not lists:member(FA, Private)] ++
                    [fmt("~s:~s/~b has no description", [Mod, F, A])
                     || {{F, A}, false} <- Documented, lists:member({F, A}, Exports)] ++
                    [fmt("~s:~s/~b missing from ~s", [Mod, F, A, Page])
                     || {{F, A}, _} <- Documented, lists:member({F, A}, Exports),
                        binary:match(Html, anchor(F, A)) =:= nomatch];
                {error, Reason} ->
                    [fmt("~s: no page ~s (~p)", [Mod, Page, Reason])]
            end
    end.

% Preprocess as rebar.config's edoc_opts do: types use the macros of
% include/tunctl_proto.hrl.
pp(File) ->
    [{preprocess, true}, {includes, [filename:join(filename:dirname(filename:dirname(File)), "include")]}].

% A module whose edoc says @private or @hidden has no page.
module_hidden(File) ->
    {_, Doc} = edoc:get_doc(File, [{private, false}, {hidden, false} | pp(File)]),
    case Doc of
        #xmlElement{attributes = Attrs} ->
            lists:any(fun(#xmlAttribute{name = N, value = V}) ->
                          (N =:= private orelse N =:= hidden) andalso V =:= "yes"
                      end, Attrs)
    end.

exports(EbinDir, Mod) ->
    Beam = filename:join(EbinDir, atom_to_list(Mod) ++ ".beam"),
    {ok, {Mod, [{exports, Exports}]}} = beam_lib:chunks(Beam, [exports]),
    [{atom_to_list(F), A} || {F, A} <- Exports, F =/= module_info].

% [{{Name, Arity}, HasDescription}]
functions(#xmlElement{content = Content}) ->
    [{{attr(name, E), list_to_integer(attr(arity, E))}, described(E)}
     || #xmlElement{name = functions, content = Fs} <- Content,
        #xmlElement{name = function} = E <- Fs].

described(#xmlElement{content = C}) ->
    lists:any(fun(#xmlElement{name = equiv}) -> true;
                 (#xmlElement{name = description, content = D}) -> text(D) =/= "";
                 (_) -> false
              end, C).

text(Nodes) ->
    string:trim(lists:flatten([text1(N) || N <- Nodes])).

text1(#xmlText{value = V}) -> V;
text1(#xmlElement{content = C}) -> [text1(N) || N <- C];
text1(_) -> "".

attr(Name, #xmlElement{attributes = Attrs}) ->
    #xmlAttribute{value = V} = lists:keyfind(Name, #xmlAttribute.name, Attrs),
    V.

anchor(F, A) ->
    list_to_binary(io_lib:format("name=\"~s-~b\"", [F, A])).

fmt(F, A) -> lists:flatten(io_lib:format(F, A)).
