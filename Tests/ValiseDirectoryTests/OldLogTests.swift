import Foundation
import Testing
import ValiseCrypto
@testable import ValiseDirectory

/// Logs written before home relays existed (kinds 1 to 9 only) still verify, with every
/// member homed at the default relay. The bundle below was made by scripts/interop/directory.py
/// make-demo as it was before kinds 10 to 12 (an independent writer): enrollments, rotations,
/// revocations, a re-enrollment, two relays of which the first (the default, where every
/// member was homed) is removed, a change of admins, kinds 8 and 9 and a checkpoint.
@Suite("Logs from before home relays")
struct OldLogTests {
    static let bundle = """
        VkFMSVNFT0IBgo5Wp7QHNtDgstXI28djZCk7BlgHSSIv3RJPyl6bBTkAAAASAAAB7gEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
        AAAAAAAAAAAAAGsWu1wBAAAA9wAaTWluaXN0w6hyZSBkZSBsJ0ludMOpcmlldXIDAANhbmGTMJT6ALpdn8cdSy2fkXfnDxQwX8ctY9h6Hr/nyHfD
        O5XcpHdTq4FheugqfJtcqkgqC2X7z0W+vaEwTQ7Ce7JfAANiZW6YV9wQ93xG311VanbSXdcM/DCX5ko1qCuB9S4QhMd3PbmiSzIHvdL4N3J/yuA4
        e39H6kXlub6oCKU74/I9Nl1sAAVjaGxvZeQ5J4ROxE+FXfGc9bzUTBJ6SX1iRrWCnQ4pV+XpangzbhBN0nYSXoItGOGjX3qlqcFaH3CgOb6fcFCd
        4oaFKW4CAAKjAAAJOoACkzCU+gC6XZ/HHUstn5F35w8UMF/HLWPYeh6/58h3wzvyM6VQWx8tvIz9jVwlG3tpddV7FkoDJD0SyihLEf60pHta/PnE
        2O8EvJ0d0l1kf3yAzhhq97AVevHw0xWNoTMBmFfcEPd8Rt9dVWp20l3XDPwwl+ZKNagrgfUuEITHdz1Cp0UFisMAQ2QVTBySEZqCwBYLAPKBtqf2
        WoJHPGdWnAHMaWo2hijJmJpeKOQPQrxq/XeVI7OiiDk2O8E+KaMGAAABmgEAAAAAAAAAAYKOVqe0BzbQ4LLVyNvHY2QpOwZYB0kiL90ST8pemwU5
        AAAAAGsWu10EAAAAowAKZGluYUBxdWl0b0gCqW6dKp8h3JTWNF486v7c0FinwsQf+yLtrtstodqQNsSourvqAUzc83789AduSvGTGVd2C1gapXC2
        hlwr0iIAAAAAaxa6+KKd9WSV9qKYi4oj+g7f/uBy7PWBUo26FXBXNnOnLHqeI92/XDXdgfC4t+rr/DRx03VDKw35NAcznZwFRL/UmgEABVF1aXRv
        AAZjb25zdWwCmFfcEPd8Rt9dVWp20l3XDPwwl+ZKNagrgfUuEITHdz2EqaeS7D9wr5It7VMZR8GwR2AijTMWIcwryq2afv9sEgGGImz6MPc9XMgw
        FgeCCit40Qi+afopVYhiZZviKvUJ5DknhE7ET4Vd8Zz1vNRMEnpJfWJGtYKdDilX5elqeDMct0gMfuuutu2x/bwuzr1PQAySg/j+LZaKhPDNtuO3
        KyheZZcUavwpbu6kE2O38SIiO1YO8OrUZCkDWQA+m/AIAAABpQEAAAAAAAAAAmevZbM4fE6m2HleZkfAAuCjqCiYb7wskP1QoisomABAAAAAAGsW
        u14EAAAArgAJZW1pbEBvc2xvrP4gzwMj1XD9AdfOHabn85DIXNVwz19/KTRWck6aZfeTEzasbX9r+/DORMGtL0OWyRgMQYqz9ZWgh792dARIYQAA
        AABrFrr4oi1TCDxoRGk3RcfNpm4vG8X58wWWRNJVF6PCAR2UeIoA7dqlWi35dS/pc8oqQ96bn9ktTTegi9jjAO95/991DQAPRW1iYXNzeSBpbiBP
        c2xvAAhhdHRhY2jDqQKTMJT6ALpdn8cdSy2fkXfnDxQwX8ctY9h6Hr/nyHfDO+jPZpsDAAI+tziUi6MInKmy8OzCCd3PKcFcHwHO6NHQAYjB8SHp
        VNHqpBKsKj9Lwn+OlP/SsCOxTf4Nixy/MATkOSeETsRPhV3xnPW81EwSekl9Yka1gp0OKVfl6Wp4M4b4dwCH59Ks1vvoTbz+gUgnRSnI1SOTDccU
        GU1B4mEoVTinBbj1y//V6ur/1BJHhgjQRp0FBKkaFF5jZ/zUrwwAAAHsAQAAAAAAAAADBeHtTV1Cj0DeyPFAPdWYGEdDBaPJz9yaPoKOyY6O6UMA
        AAAAaxa7XwUAAAD1AApkaW5hQHF1aXRvSAKpbp0qnyHclNY0Xjzq/tzQWKfCxB/7Iu2u2y2h2pCfqwrFjIGNyhsD+SotH+ImZV7OON5l8BnTmxbv
        FiRxYlpv6jEg6W1p+TONUwejCHZ5U9lm7VY/NEMRXtaFn4c4AAAAAGsWu2arCMsBwiOaK6MFazJs6EkOSNNxSOAm/+xWH/cMNetihNzQwK2X9ONN
        nialz8og2yNEZsr41nlLIyKFBPnQehMOAQI+4312RuJQCGeD+lCkvJbETkBF24pWmUE5Osr7iDvAsFDzxXjmHk+E48TNW/lBjCqSt8dcw913Ie70
        snHcwwgCkzCU+gC6XZ/HHUstn5F35w8UMF/HLWPYeh6/58h3wzud93qbyHU8icePfB4tVXkOtceUNxeC8mJFplQLxiV0QkSZvaCwOU5yHLeuAfHX
        P8knfFqbBaQdJZyPhumIILgLmFfcEPd8Rt9dVWp20l3XDPwwl+ZKNagrgfUuEITHdz2eqyPgqgRFeYMu6VPn9J6QB4YtaKBcS0Cq/tH4QiXh4jW1
        0GqSVDUZBjZ+GvB7AJ4S0NL2UCvrFNh6PRge/qsBAAABqwEAAAAAAAAABCIVtJi+7NCRrcUxHGjW+lyf2GFKR/UnG89w1V11MFTkAAAAAGsWu2AF
        AAAAtAAJZW1pbEBvc2xvrP4gzwMj1XD9AdfOHabn85DIXNVwz19/KTRWck6aZfcFBarc3C0rOA5f+nPRJcx9cyX/4ZOj8ryABZbA+T+Q8TKIG4LI
        hpd8x6TBMzQpJesr4su5BTdbXzYmAJoA2LktAAAAAGsWu3BCg1c4ftC1rvhbV+CKf81evXvSVQIN/LqBF7VIpRiBYBEk8BkYPjfVBR5fTEFu7E2N
        APJboFkjlmdDtXziZ5kFAAKYV9wQ93xG311VanbSXdcM/DCX5ko1qCuB9S4QhMd3PTD+BtGjmz5mJ0JEzlFbEbkhpgKWg9H/bZmP51KL2UzhJHxu
        dFDJRmw3+IRpF2dydZhV7tvgQ+jnnXvExwXeww/kOSeETsRPhV3xnPW81EwSekl9Yka1gp0OKVfl6Wp4M1hsVs5+FO/AHgj4IEtMRD4BxF71siAx
        3WzA46V4blIlmwqQs1A32JF5zqx4tNMyOIq27Z6tvBj43wmQfgECbwUAAAEgAQAAAAAAAAAFaK0J3HLZROfmQieKcpMmsMuPmt4JocWXCH4lrp0n
        rHkAAAAAaxa7YQYAAAApAQAJZW1pbEBvc2xvABtkZXZpY2Ugc2VpemVkIGF0IHRoZSBib3JkZXICkzCU+gC6XZ/HHUstn5F35w8UMF/HLWPYeh6/
        58h3wztDx83cJW7OlW2Qh0rE0rhnGVgmEXUwEVXY8V2oBT6zS/Pq1zyYFUE2G+SUXdlzHwie9a2EflrQ/TdYtv/8A00P5DknhE7ET4Vd8Zz1vNRM
        EnpJfWJGtYKdDilX5elqeDODgtg++9/FJ1Ysr6UlrWEiFAznRuja/d+MofL4lz/Uc1/WX69rtAnv1KPMpf7hFwur/3HrKoDdvKQ+hoJ9yEsDAAAB
        mAEAAAAAAAAABuXl52qGKNAI9iin5DG7GyQsblPzuiGQweJQj4yOlvlhAAAAAGsWu2ICAAAAoQAHcmVsYXktMQAWcmVsYXkuZXhhbXBsZS5uZXQ6
        ODQ0M6hP72xn88PPBH43/eRkIwQblr0LBQo/6FboXrsuefMhnZRmfKvo18RdRVz8iTy93W9fECk9EuLDPOChI1CzM3CZlN7npq05ZozST1uzdnj0
        /YGj9OsueMfCQzNB9oOVqHFSJJMSJwgYlrqK5j03wbTkVIlCyvJ3UXA9PbB6DW8NApMwlPoAul2fxx1LLZ+Rd+cPFDBfxy1j2Hoev+fId8M7VGut
        3F0/xOhA+kBhtAYymMtzvuWAVJgF5P3TMSrpBvZ6jgw9fXCMq9WyA9Cy+lejNJnX9eNnxldmuksblJycCJhX3BD3fEbfXVVqdtJd1wz8MJfmSjWo
        K4H1LhCEx3c9OrB6H9gxwOAo8aWUJHdFyxYE3JBfT5Xbpqa9GPvLo4swv4j4CIwAxbTNlDSNwgm6GLuywF9LEQqo6ru0duytCQAAARcBAAAAAAAA
        AAc4DI47UcEIAdRGh4ID6sQhAMxdE7hnBunn2RYcS//J6QAAAABrFrtjCAAAACDvnP5nRg2stLa/aksf8zXreN8u9BtBQXytF54f3DeFywKYV9wQ
        93xG311VanbSXdcM/DCX5ko1qCuB9S4QhMd3PYBUMWP7RF2wcXtgbPs/iJPXmZyZ7W0QfLxfsTpRPFOnmDb7fbkOMVv1Bh8J4N7E8rjSmKYq5URi
        t7n1F5hFIQfkOSeETsRPhV3xnPW81EwSekl9Yka1gp0OKVfl6Wp4M3dtmaxkv1/AuB4DlZoziX1HSyOFeaXXUGyO2O6EAABo0zu0c7eoUctmCqNq
        pdnOBkQqnkoPojFL5s9H/zfyBwwAAAGnAQAAAAAAAAAIrG0StwQrPZj/FALHlh10RrHaVcOYmvHP3XTSh59uEwMAAAAAaxa7ZAQAAACwAAtmYXJp
        ZEByYWJhdItah5B4P+J7oD7Xz89uGwb7ZmNwp36NH2Yq1qSfxIAf+Xx/T5rznFRCB7gtaTADRWniQwkn4kss9ayOmUVgTgEAAAAAaxa6+C9XxgtR
        +VJmwXVLaQY9k1f/tGtqFVL1OF0nXKofjr4faGvFC4lO52NaIuTNdkEWOB/xkSe5oUkXqIQd4IWJtgcABVJhYmF0ABJjaGFyZ8OpIGQnYWZmYWly
        ZXMCkzCU+gC6XZ/HHUstn5F35w8UMF/HLWPYeh6/58h3wzsqaENgVArYjpJMgkvXqeph1k47eqhig3g8Mzh9MwlWG6/2XpOFKw3zEM79fn+L72A9
        i+TjsW7r24ceFIyytVIA5DknhE7ET4Vd8Zz1vNRMEnpJfWJGtYKdDilX5elqeDMjHb/hI+ehPEWZ+dEOboA6ZYagHFFo8XtDJDmEdhnq5KuciDtR
        AZmYk1Vv6A9y2/BtKgq+6ta7fRBRLxUW0wIPAAAB7QEAAAAAAAAACR6XPtvPmp0ZybaP0zPq5O4IQGt4gG1p00LfRlaRfJjTAAAAAGsWu2UFAAAA
        9gALZmFyaWRAcmFiYXSLWoeQeD/ie6A+18/PbhsG+2ZjcKd+jR9mKtakn8SAH4gM4SdpM1gr4ZASZrjkpWjG7/uPjvEfC/RaZca0+A4RF88xoCFx
        59NLnBWGHheEeLHs6tGLQ+LBjerg+id+zGIAAAAAaxa7ZjjIhwC/MDEXMcWApy4vC0ztOKrYvwyPFQRgIeaIQz9OIu+PiaXD9OmvAKirNB6sx9gA
        WYdyUUcie/O5zJNQlAIBZmeB1rK10MGthANHoGkczG0TOBDllBC4av0tSeiLy+tx8H0pqS8LYIn7MfsqBi8hjcPuCA78Hw1MVTpA5bTMBwKTMJT6
        ALpdn8cdSy2fkXfnDxQwX8ctY9h6Hr/nyHfDO7MRJlvahpFIZ1dQehcfMOuK4leQRUOMDvNmBrwt1Jdumzvrckcn4q+PMpUpDySuC261m785VepY
        Y3fYzHr+OgeYV9wQ93xG311VanbSXdcM/DCX5ko1qCuB9S4QhMd3PesDqPIV/QaikgtmX44rxfg6fDAgDjDmsnui3o4Za8G0Afid1uo8wtSNmIcD
        KOkap2/XIGstIbXyjE8gF8ICvQYAAAEpAQAAAAAAAAAKkcK+oDqGZ+6vNO2+iJ8h7JxwNKvDifsUaUj8Zuv/pdwAAAAAaxa7ZgYAAAAyAotah5B4
        P+J7oD7Xz89uGwb7ZmNwp36NH2Yq1qSfxIAfAA9vbGQgbGFwdG9wIHNvbGQCmFfcEPd8Rt9dVWp20l3XDPwwl+ZKNagrgfUuEITHdz2PbK5ljppP
        lpwcBKcSBAe3XT+ehwcBmaSKY/U+7avv7ngp28mLzw+vHs+wLDFKQ6WCbMrEAwclu+vT5V8bPeIM5DknhE7ET4Vd8Zz1vNRMEnpJfWJGtYKdDilX
        5elqeDPuwtIrZQtySaYjU001gh0XTbyGXGvfY60QqjWSXyR/yo5HAmyzzCtbm1ex4ZjjTrzBrqAdEN9UBT6OOkta/rwJAAABlwEAAAAAAAAACxJE
        sWEaZVA4oW+nqu5I4CqbU2CTPWtQKmjjcC2eSy+yAAAAAGsWu2cEAAAAoAAJZ2FsYUBsaW1hz1h/BDvJAE6wr5J1mC2ea+dQeZBzAjkSqt1ot6a7
        QXI0k0oAO1cWBlSbZOdClp5Rujw3+NtHXWJ3TNz3z3TCJQAAAABrFrr4SwNjqfY/1C1JQ3ARzRQNwrYNDz5KpA9JP4XoPoSkycNt8t8ORnLs+xVb
        OSTwG2Tlb8fYiv+oy6YRr1Cdo9+5BwAETGltYQAFc3RhZmYCkzCU+gC6XZ/HHUstn5F35w8UMF/HLWPYeh6/58h3wzt8E4iNTtmqR4YKpoG61msJ
        z2Lz4vjKEmDLbelQlOX5HE/7MLK1m0vCdaMm4Qtv/GdEK3SFtRo1LyEGi3MOgG0A5DknhE7ET4Vd8Zz1vNRMEnpJfWJGtYKdDilX5elqeDMFpY7b
        FpSqkvqVMnBfJAyzszW34BmP3PGEnj+qPTY5qeCB3X3SlKlt+RxB3HVt8CcwPAL++/aUfbFwmDlSXXcOAAABKQEAAAAAAAAADAt1qa0wxUg/nbTb
        Ay8m4yaE90294AzjwFEfRA18vW3pAAAAAGsWu2gGAAAAMgLPWH8EO8kATrCvknWYLZ5r51B5kHMCORKq3Wi3prtBcgAPa2V5IGNvbXByb21pc2Vk
        ApMwlPoAul2fxx1LLZ+Rd+cPFDBfxy1j2Hoev+fId8M7mA1AR3ui2XaI4ZyspzqWdlWndjrlym4mNjw4Png9p6DSQax+TOaoQiCckcpRaSFV97DQ
        sTKj08K+YLt1EPaFBZhX3BD3fEbfXVVqdtJd1wz8MJfmSjWoK4H1LhCEx3c9F473kAHdQZKJzzSSM+frPgjYxtB4FaQ7yDNygIRZIJdTlIj8AINf
        knDYcvGa9UmvVeM3Lui8pNyi5ppmeYkJAAAAAZoBAAAAAAAAAA15TMl0xb6azjURB5JnLEjgpgFF57O5gO71H2UcS2QNrQAAAABrFrtpBAAAAKMA
        CWVtaWxAb3Nsb9PDo0X68PQN6Xwfv+acEBZLAJDCgcKPJNczeARERydPbfApuFGRs2BPhfhvAdLabNrE0mtOeKLuL6HLFNCpIF0AAAAAaxa6+JpY
        m4jnzVcmZ9JWUrFG/N91ffZufe3+j+rydsCeNXnRC43i5H3jOu+JVvclyKANHEPduKjmQtsloo8iqcWs+woABE9zbG8ACGF0dGFjaMOpAphX3BD3
        fEbfXVVqdtJd1wz8MJfmSjWoK4H1LhCEx3c9+dFAefnW9/xwclom4EWa/F1zdKtIgII8WsPk1VMVdLYGonYKUFAU0RcsWzqXqa+5ZoyLCal96LHm
        7hqc+SbCB+Q5J4ROxE+FXfGc9bzUTBJ6SX1iRrWCnQ4pV+Xpangzmw62A1ZeLRvNoYfoSvMVnKnLsVQ5lkE3Y52MDy8InmXFXXrfYA0vzx5Jxvur
        j1mTy2B+f2rLrn0SQv3u0vHoDgAAAZMBAAAAAAAAAA4vnXxwMfkzi4r6ScbFj5eQsHia62lnhnYd1b76tbku5QAAAABrFrtqAgAAAJwAB3JlbGF5
        LTIAEVsyMDAxOmRiODo6N106NDQzd4KvUGtANyPcI3z7Dw746sEPSLu68/q+nWxl6gkHR3fqN/xLU1E6cUtRNQnM4FSFp2Oi6OKvpjqV6kWc6L1v
        8+acIWyIdz+ZQdFGwgL6JlFsWEOH3Gjil59OjEwMObY3vIRUYiWl3Al1kja6Ki+wPR89ppF13t2ojrbOZdDY6g8CkzCU+gC6XZ/HHUstn5F35w8U
        MF/HLWPYeh6/58h3wzvwmen3lteiAVZKqAqw0lN4AWsSLTasEwPG/MsY8Wwb8vnwW+jGa6Iy5Y6Yi++I3OpbH8IGuRdY43yMwUs2vEIC5DknhE7E
        T4Vd8Zz1vNRMEnpJfWJGtYKdDilX5elqeDMSOgriC5ZM8WywojznyJPe4OUb2jveYjM0Vt9AjN3sH+cT2eYq0bwV/oNdfH4qNMEukVKadmV61vY6
        qo5jApsIAAABAAEAAAAAAAAAD+Gv3FPOcEL1t55/BUMFHWpWU+Omuk2Mcn+Lhasm5gJGAAAAAGsWu2sDAAAACQAHcmVsYXktMQKTMJT6ALpdn8cd
        Sy2fkXfnDxQwX8ctY9h6Hr/nyHfDO1wHxqTXwdPVDDlzvgkPMueO9SFN/756IYra8wqxb/uAjMdlqpNULLgYSDaS1RBv/3+7SlMHdC9DlAozQbHh
        xQqYV9wQ93xG311VanbSXdcM/DCX5ko1qCuB9S4QhMd3Pfj93AR3fwth69i971pX9xwCJYijIKLO1c7oLFG4HqjPdXDDBGtnH4OPhExvqGtqu7Eq
        TOa7qtvx7CSAuKw58wcAAAHKAQAAAAAAAAAQzzsrA2HA4yxMOrXAfy4WBsDubjQ2zhJHTozqQdM/eC4AAAAAaxa7bAcAAADTAwADYW5hkzCU+gC6
        XZ/HHUstn5F35w8UMF/HLWPYeh6/58h3wzuV3KR3U6uBYXroKnybXKpIKgtl+89Fvr2hME0OwnuyXwADYmVumFfcEPd8Rt9dVWp20l3XDPwwl+ZK
        NagrgfUuEITHdz25oksyB73S+Ddyf8rgOHt/R+pF5bm+qAilO+PyPTZdbAAFZGFyaW9ikbhCfG44KSSApIYVVWEsvgHyMC4H/3ioGKT0rHx6dmAR
        rMZJdLN8VhEcXATbFQCSlqCtUZuBsNEz1vQqU75vAgKYV9wQ93xG311VanbSXdcM/DCX5ko1qCuB9S4QhMd3PQ23EEgt6Rn6jYgJ8Oxy8WyXNyUK
        Va/w5yoYmZHDslRwY5rtJBR3igEpjkRfFy6H8hUCKIZSPdrYP5RJ58LKTg/kOSeETsRPhV3xnPW81EwSekl9Yka1gp0OKVfl6Wp4M9uOnCq6FaM3
        vQaTHLpYTEQMLV9O0+iwOGMO+PzY1ENQsaXBWl8IAz51EV4+xBjoCLJBKIlfUBACVLndpOyLqwUAAAEfAQAAAAAAAAAR+OdV+dc4ftlpSe6mCBfu
        nHnHDTuy9TTFnLtt0jCNrX8AAAAAaxa7bQkAAAAoHq4SN1gEVoEjRDb68WeL3I3l62kW4VFc5c8xkNsdhAwAAAAAbPfu7QJikbhCfG44KSSApIYV
        VWEsvgHyMC4H/3ioGKT0rHx6dmh9l/GscjOwATCa7dYe1659A54TtwbHeK85giCurwdHURDZ6SxfXypWrEo4W8RBL9ble5+eTlEHs0gun5bMawGT
        MJT6ALpdn8cdSy2fkXfnDxQwX8ctY9h6Hr/nyHfDO5xvn9bDzt2BhdslZiH7aIFE2EMZrDSVUrygYFm9RJUjkff8slGCkcR7IrHJ7pH+zS5cfNjx
        NfqHY4bizV6bBwoBAQAAAAAAAAARVJMEfV0ToWtFvWaWW2NVuSy544a4v2wAu1mMDciyaB8AAAAAaxa7th6uEjdYBFaBI0Q2+vFni9yN5etpFuFR
        XOXPMZDbHYQMn9j0CFJI22eVO5v5YMhsKee4X9YIfP9PipWqWKusFhKIdPglfkmZ5XnXXWPKikGu6YUlm0G1HwZgHU9kCkqZDA==
        """

    @Test("the old bundle verifies; members without a home are homed at the remaining relay")
    func oldBundleVerifies() throws {
        let bytes = try #require(Data(base64Encoded: Self.bundle, options: .ignoreUnknownCharacters))
        let bundle = try OrganisationBundle(decoding: Array(bytes))
        #expect(Set(bundle.entries.map(\.body.kind.rawValue)) == Set(1...9))
        let verifier = try DirectoryVerifier.verify(bundle.entries, pinnedGenesis: bundle.genesisHash, now: bundle.entries.last!.timestamp + 1)
        let state = try #require(verifier.state)
        #expect(verifier.count == 18)
        #expect(state.headHash.hex == "5493047d5d13a16b45bd66965b6355b92cb9e386b8bf6c00bb598c0dc8b2681f")
        let active: [String: Bool] = ["dina@quito": true, "emil@oslo": true, "farid@rabat": true, "gala@lima": false]
        #expect(Dictionary(uniqueKeysWithValues: state.members.map { ($0.key.value, $0.value.isActive) }) == active)
        #expect(state.members.values.allSatisfy { $0.home == nil })
        #expect(state.relays.keys.sorted() == ["relay-2"])
        #expect(state.defaultRelay?.name == "relay-2")
        #expect(state.relays["relay-2"]?.addresses == ["[2001:db8::7]:443"])
        for name in state.members.keys { #expect(state.homeRelay(of: name)?.name == "relay-2") }
    }
}
