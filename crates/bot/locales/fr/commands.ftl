# Les réponses des commandes d'invitrack en français. Un message absent ici est dit en anglais.

## Commun

guild-only = Les commandes d'invitrack fonctionnent dans un serveur.
unknown-command = Cette commande n'existe plus.
unavailable = invitrack ne peut pas lire ses données pour le moment ; réessayez dans un instant.
need-manage-server = Il faut la permission Gérer le serveur pour faire cela.
not-your-button = Seul le membre qui a demandé peut répondre.
button-previous = Précédent
button-next = Suivant
button-confirm-reset = Réinitialiser
button-cancel = Annuler
everyone = tout le monde

## /invites

invites = { $user } a **{ $total }** { $total ->
        [one] invitation
       *[other] invitations
    } ({ $real } réelles, { $fake } fausses, { $left } parties, { $bonus } bonus).

## /leaderboard

range-all = depuis toujours
range-7d = 7 derniers jours
range-30d = 30 derniers jours
leaderboard-title = **Classement** ({ $range }), page { $page } sur { $pages }
leaderboard-line = { $rank }. { $inviter } : **{ $real }** réelles ({ $total } au total, { $fake } fausses, { $left } parties, { $bonus } bonus)
leaderboard-empty = Personne n'a encore amené de membre ({ $range }). Les invitations sont comptées à partir de maintenant.
leaderboard-no-page = Le classement ({ $range }) n'a pas de page { $page }.

## /inviter

inviter-none = invitrack ne connaît aucune arrivée de { $member } : il est arrivé avant le suivi, ou son arrivée est encore en cours d'analyse.
inviter-invite = { $member } est arrivé { $when } avec l'invitation { $code } de { $inviter }.
inviter-vanity = { $member } est arrivé { $when } par l'URL personnalisée { $code }.
inviter-nobody = personne
inviter-unknown-code = un code inconnu
inviter-fake = Cette arrivée compte comme fausse.
inviter-left = Il est parti depuis.
